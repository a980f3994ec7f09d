//! Settings one experiment takes from others' results (the leaderboard's λ, chosen from the
//! deepid2 and center-loss sweeps), recorded in `results/selections.parquet` once every run they
//! are chosen from is recorded. Sweeps read them from here, never from whatever part of those
//! sweeps a shard happens to hold, so shards and merges cannot mix configs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::{read_parquet, write_parquet, Cell, Table};

/// Values chosen for one profile by one rule, and where they came from (in words).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub name: String,
    pub profile: String,
    pub values: Map<String, Value>,
    pub source: String,
}

/// The selections of one results directory.
pub struct Selections {
    path: PathBuf,
}

impl Selections {
    pub fn open(results_dir: &Path) -> Selections {
        Selections { path: results_dir.join("selections.parquet") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn all(&self) -> Result<Vec<Selection>> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let source = self.path.display().to_string();
        let table = Table::new(source.clone(), Table::from_frame(&read_parquet(&self.path)?)?.rows);
        table
            .records()
            .map(|r| {
                let values = serde_json::from_str(r.text("values")?).with_context(|| {
                    format!("{source}: the values of {} are not a JSON object", r.text("name").unwrap_or("?"))
                })?;
                Ok(Selection {
                    name: r.text("name")?.into(),
                    profile: r.text("profile")?.into(),
                    values,
                    source: r.text("source")?.into(),
                })
            })
            .collect()
    }

    /// The selection `name` of `profile`, if it is recorded.
    pub fn get(&self, name: &str, profile: &str) -> Result<Option<Selection>> {
        Ok(self.all()?.into_iter().find(|s| s.name == name && s.profile == profile))
    }

    /// Records `selection` in place of the one of its name and profile; whether anything changed.
    pub fn put(&self, selection: &Selection) -> Result<bool> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let _lock = crate::util::lock_dir(dir).with_context(|| format!("cannot lock {}", dir.display()))?;
        let mut all = self.all()?;
        if all.contains(selection) {
            return Ok(false);
        }
        all.retain(|s| !(s.name == selection.name && s.profile == selection.profile));
        all.push(selection.clone());
        all.sort_by(|a, b| (&a.name, &a.profile).cmp(&(&b.name, &b.profile)));
        let rows = all
            .iter()
            .map(|s| {
                vec![
                    ("name".to_string(), Cell::from(s.name.as_str())),
                    ("profile".into(), s.profile.as_str().into()),
                    ("values".into(), Value::Object(s.values.clone()).to_string().into()),
                    ("source".into(), s.source.as_str().into()),
                ]
            })
            .collect();
        let metadata = vec![("replicate.table".to_string(), "selections".to_string())];
        write_parquet(&self.path, &mut Table::new("selections", rows).to_frame()?, metadata)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_recorded_once_per_name_and_profile() {
        let dir = std::env::temp_dir().join(format!("replicate-selections-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let selections = Selections::open(&dir);
        assert_eq!(selections.get("l", "quick").unwrap(), None);
        let values: Map<String, Value> = serde_json::from_str(r#"{"lambda": 0.01}"#).unwrap();
        let quick = Selection { name: "l".into(), profile: "quick".into(), values, source: "from a sweep".into() };
        assert!(selections.put(&quick).unwrap());
        assert!(!selections.put(&quick).unwrap(), "the same selection again changes nothing");
        let smoke = Selection { profile: "smoke".into(), ..quick.clone() };
        assert!(selections.put(&smoke).unwrap());
        let changed = Selection { source: "from more seeds".into(), ..quick.clone() };
        assert!(selections.put(&changed).unwrap());
        assert_eq!(selections.get("l", "quick").unwrap(), Some(changed));
        assert_eq!(selections.get("l", "smoke").unwrap(), Some(smoke));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
