//! The stack file as serde reads it, before validation: every field optional and, where a
//! later check may need to point at it, with its position. Scalars are read as text (booleans
//! too), so that a bad value becomes a diagnostic in validation rather than stopping the parse.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// A scalar taken as its literal text (`true`, `5`, `1.0` stay as written); null is "".
#[derive(Debug)]
pub(crate) struct Text(pub(crate) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Text(
            Option::<String>::deserialize(deserializer)?.unwrap_or_default(),
        ))
    }
}

/// A `KEY: value` mapping with the position of each value.
pub(crate) type RawMap = BTreeMap<String, Spanned<Text>>;

/// A list of values with their positions.
pub(crate) type RawList = Vec<Spanned<String>>;

/// A whole stack file.
#[derive(Debug, Deserialize)]
pub(crate) struct RawStack {
    pub(crate) version: Option<Spanned<String>>,
    pub(crate) provider: Option<Spanned<RawProvider>>,
    pub(crate) functions: Option<Spanned<RawFunctions>>,
    pub(crate) configuration: Option<RawConfiguration>,
}

/// The `provider` section.
#[derive(Debug, Deserialize)]
pub(crate) struct RawProvider {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) gateway: Option<String>,
}

/// The `configuration` section.
#[derive(Debug, Deserialize)]
pub(crate) struct RawConfiguration {
    pub(crate) templates: Option<Vec<Spanned<RawTemplate>>>,
    pub(crate) copy: Option<Vec<String>>,
}

/// One `configuration.templates` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct RawTemplate {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) source: Option<String>,
}

/// The `functions` mapping, in file order, with the position of each name.
#[derive(Debug)]
pub(crate) struct RawFunctions(pub(crate) Vec<(Spanned<String>, RawFunction)>);

impl<'de> Deserialize<'de> for RawFunctions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FunctionsVisitor;

        impl<'de> Visitor<'de> for FunctionsVisitor {
            type Value = RawFunctions;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of function names to functions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFunctions, A::Error> {
                let mut functions = Vec::new();
                while let Some(name) = map.next_key()? {
                    functions.push((name, map.next_value()?));
                }
                Ok(RawFunctions(functions))
            }
        }

        deserializer.deserialize_map(FunctionsVisitor)
    }
}

/// One function entry.
#[derive(Debug, Deserialize)]
pub(crate) struct RawFunction {
    pub(crate) lang: Option<Spanned<String>>,
    pub(crate) handler: Option<Spanned<String>>,
    pub(crate) image: Option<Spanned<String>>,
    pub(crate) fprocess: Option<String>,
    pub(crate) environment: Option<RawMap>,
    pub(crate) environment_file: Option<RawList>,
    pub(crate) secrets: Option<RawList>,
    pub(crate) labels: Option<RawMap>,
    pub(crate) annotations: Option<RawMap>,
    pub(crate) limits: Option<RawResources>,
    pub(crate) requests: Option<RawResources>,
    pub(crate) constraints: Option<Vec<String>>,
    pub(crate) readonly_root_filesystem: Option<Spanned<String>>,
    pub(crate) namespace: Option<Spanned<String>>,
    pub(crate) skip_build: Option<Spanned<String>>,
    pub(crate) build_args: Option<RawMap>,
    pub(crate) build_options: Option<Vec<String>>,
    pub(crate) build_secrets: Option<RawMap>,
    pub(crate) platforms: Option<String>,
}

/// `limits` or `requests`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawResources {
    pub(crate) memory: Option<Spanned<String>>,
    pub(crate) cpu: Option<Spanned<String>>,
}

/// An environment file: a top-level `environment` mapping.
#[derive(Debug, Deserialize)]
pub(crate) struct RawEnvFile {
    pub(crate) environment: Option<RawMap>,
}

/// The text of each value of `map`.
pub(crate) fn texts(map: Option<RawMap>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .map(|(key, value)| (key, value.value.0))
        .collect()
}
