//! Function templates: the ones embedded in the binary, and a project's own in
//! `./template/<lang>/` beside the stack file, which add to or override the embedded ones.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ironfaas_spec::template::TemplateConfig;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The template description file in every template folder.
const TEMPLATE_FILE: &str = "template.yml";

/// Where a template's files are.
#[derive(Debug, Clone)]
enum Files {
    /// In the binary, under this name.
    Embedded(String),
    /// In this folder.
    Disk(PathBuf),
}

/// A template, ready to copy.
#[derive(Debug, Clone)]
pub struct Template {
    /// Its `lang` name.
    pub name: String,
    /// Its parsed template.yml.
    pub config: TemplateConfig,
    files: Files,
}

fn embedded_files(lang: &str) -> impl Iterator<Item = (&'static str, &'static [u8], u32)> + '_ {
    embedded::FILES
        .iter()
        .filter_map(move |(path, bytes, mode)| {
            let rest = path.strip_prefix(lang)?.strip_prefix('/')?;
            Some((rest, *bytes, *mode))
        })
}

fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(dest, bytes)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
}

/// Copies the folder `src` into `dest` (merging), skipping `.git`.
pub fn copy_dir(src: &Path, dest: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&from, &to)?;
        } else if kind.is_symlink() {
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

impl Template {
    /// Writes the template's starter handler into `dest`: the contents of its handler folder,
    /// or, for a template whose handler folder is the bundle root, all of its files.
    pub fn scaffold_into(&self, dest: &Path) -> io::Result<()> {
        let folder = self.config.handler_folder.trim_end_matches('/');
        if folder == "." || folder.is_empty() {
            return self.copy_into(dest);
        }
        let prefix = format!("{folder}/");
        match &self.files {
            Files::Embedded(lang) => {
                for (rel, bytes, mode) in embedded_files(lang) {
                    if let Some(inner) = rel.strip_prefix(&prefix) {
                        write_file(&dest.join(inner), bytes, mode)?;
                    }
                }
                Ok(())
            }
            Files::Disk(dir) => copy_dir(&dir.join(folder), dest),
        }
    }

    /// `embedded`, or the folder the template comes from.
    pub fn source(&self) -> String {
        match &self.files {
            Files::Embedded(_) => "embedded".into(),
            Files::Disk(dir) => dir.display().to_string(),
        }
    }

    /// Copies the template's files (all but template.yml) into `dest`.
    pub fn copy_into(&self, dest: &Path) -> io::Result<()> {
        match &self.files {
            Files::Embedded(lang) => {
                for (rel, bytes, mode) in
                    embedded_files(lang).filter(|(rel, ..)| *rel != TEMPLATE_FILE)
                {
                    write_file(&dest.join(rel), bytes, mode)?;
                }
                Ok(())
            }
            Files::Disk(dir) => {
                copy_dir(dir, dest)?;
                let _ = std::fs::remove_file(dest.join(TEMPLATE_FILE));
                Ok(())
            }
        }
    }
}

/// The templates a project can use.
#[derive(Debug)]
pub struct Templates {
    all: BTreeMap<String, Result<Template, String>>,
}

impl Templates {
    /// The embedded templates plus those in `<project_dir>/template/`.
    pub fn load(project_dir: &Path) -> Templates {
        let mut all = BTreeMap::new();
        for (path, bytes, _) in embedded::FILES {
            if let Some(lang) = path
                .strip_suffix("/template.yml")
                .filter(|l| !l.contains('/'))
            {
                let origin = format!("embedded template {lang}");
                let parsed = std::str::from_utf8(bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|text| {
                        TemplateConfig::parse(text, &origin).map_err(|e| e.to_string())
                    })
                    .map(|config| Template {
                        name: lang.to_string(),
                        config,
                        files: Files::Embedded(lang.to_string()),
                    });
                all.insert(lang.to_string(), parsed);
            }
        }
        let local = project_dir.join("template");
        if let Ok(entries) = std::fs::read_dir(&local) {
            for entry in entries.flatten() {
                let dir = entry.path();
                let file = dir.join(TEMPLATE_FILE);
                if !file.is_file() {
                    continue;
                }
                let lang = entry.file_name().to_string_lossy().into_owned();
                let origin = file.display().to_string();
                let parsed = std::fs::read_to_string(&file)
                    .map_err(|e| format!("{origin}: {e}"))
                    .and_then(|text| {
                        TemplateConfig::parse(&text, &origin).map_err(|e| e.to_string())
                    })
                    .map(|config| Template {
                        name: lang.clone(),
                        config,
                        files: Files::Disk(dir.clone()),
                    });
                all.insert(lang, parsed);
            }
        }
        Templates { all }
    }

    /// Every template name.
    pub fn names(&self) -> Vec<String> {
        self.all.keys().cloned().collect()
    }

    /// The template `lang`, or why it cannot be used.
    pub fn get(&self, lang: &str) -> Result<&Template, String> {
        match self.all.get(lang) {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "there is no template '{lang}'; available: {}",
                self.names().join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_parse() {
        let t = Templates::load(Path::new("/nonexistent"));
        for name in ["python3-http", "node", "bash-streaming", "binary", "rust"] {
            let template = t.get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(template.config.language, name);
        }
    }

    #[test]
    fn project_templates_override_and_add() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("template/mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(
            mine.join("template.yml"),
            "language: mine\nfprocess: ./run\nmode: streaming\n",
        )
        .unwrap();
        std::fs::write(mine.join("run"), "x").unwrap();
        let t = Templates::load(dir.path());
        let mine = t.get("mine").unwrap();
        let out = dir.path().join("out");
        mine.copy_into(&out).unwrap();
        assert!(out.join("run").is_file());
        assert!(!out.join("template.yml").exists());
        assert!(t.get("python3-http").is_ok());
        assert!(t.get("nope").unwrap_err().contains("available:"));
    }
}
