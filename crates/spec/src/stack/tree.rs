//! The shape of a YAML document: its mappings' keys with their positions, and where sequences
//! and scalars are. Checked against the schema before the typed parse, so unknown and
//! duplicate keys and wrong shapes are all reported at once and with their function.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::model::SourcePos;

/// One YAML node, reduced to its shape.
#[derive(Debug)]
pub(crate) enum Node {
    /// A mapping: its keys in file order, duplicates included.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A non-null scalar.
    Scalar,
    /// `~`, `null` or nothing.
    Null,
}

impl Node {
    /// What this node is, for messages ("a list", "a mapping", ...).
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Node::Map(_) => "a mapping",
            Node::Seq(_) => "a list",
            Node::Scalar => "a single value",
            Node::Null => "empty",
        }
    }

    /// The position of the key at `path` (mapping keys from this node down), if present.
    pub(crate) fn key_pos(&self, path: &[&str]) -> Option<SourcePos> {
        let (first, rest) = path.split_first()?;
        let Node::Map(entries) = self else {
            return None;
        };
        let (key, value) = entries.iter().find(|(key, _)| key.value == *first)?;
        if rest.is_empty() {
            Some(key.referenced.into())
        } else {
            value.value.key_pos(rest)
        }
    }

    /// The keys leading to the innermost mapping entry at or before `pos`: the entry an error
    /// at `pos` most likely belongs to. Sequence items are skipped over, not named.
    pub(crate) fn path_at(&self, pos: SourcePos) -> Vec<String> {
        let mut path = Vec::new();
        let mut node = self;
        loop {
            node = match node {
                Node::Map(entries) => {
                    let Some((key, value)) = entries
                        .iter()
                        .filter(|(key, _)| SourcePos::from(key.referenced) <= pos)
                        .max_by_key(|(key, _)| SourcePos::from(key.referenced))
                    else {
                        return path;
                    };
                    path.push(key.value.clone());
                    &value.value
                }
                Node::Seq(items) => {
                    match items
                        .iter()
                        .filter(|item| SourcePos::from(item.referenced) <= pos)
                        .max_by_key(|item| SourcePos::from(item.referenced))
                    {
                        Some(item) => &item.value,
                        None => return path,
                    }
                }
                Node::Scalar | Node::Null => return path,
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
}
