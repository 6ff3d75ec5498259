//! Output sized by content: which stored pieces make each file a finished Bulk Data job
//! serves. The pieces of one type, unit by unit in order, are packed end to end into
//! files of at most the job's resource and byte limits, so a job has about one file per
//! type per limit's worth of data, not one per type per work unit. The packing depends
//! only on the finished units and the limits stored with the job, so every replica serves
//! the same manifest and the same bytes under one URL. It computes names and offsets only;
//! it reads no data and decides nothing about access.

use super::files::Piece;
use super::jobs::DoneUnit;
use super::ndjson::{file_name, Limits};
use std::collections::BTreeMap;

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFile {
    pub resource_type: String,
    /// `{Type}.{n}.ndjson`.
    pub name: String,
    pub count: u64,
    /// Its length (`None` while some piece's length is not recorded: see [`Self::pieces`]).
    pub bytes: Option<u64>,
    /// Its pieces in order: key within the job, and length when recorded.
    pub pieces: Vec<(String, Option<u64>)>,
    /// The units whose pieces it holds (their patients are in it).
    pub units: Vec<i64>,
}

impl ServedFile {
    /// The pieces under `job`, given every piece's length.
    pub fn located(&self, job: &str, sizes: &[u64]) -> Vec<Piece> {
        self.pieces
            .iter()
            .zip(sizes)
            .map(|((key, _), bytes)| Piece { key: format!("{job}/{key}"), bytes: *bytes })
            .collect()
    }
}

/// Packs the finished units' pieces into files, by type (sorted) and then in unit order.
pub fn pack(units: &[DoneUnit], limits: Limits) -> Vec<ServedFile> {
    let mut ordered: Vec<&DoneUnit> = units.iter().collect();
    ordered.sort_by_key(|u| u.seq);
    let mut by_type: BTreeMap<&str, Vec<ServedFile>> = BTreeMap::new();
    for unit in ordered {
        for out in &unit.outputs {
            let files = by_type.entry(out.resource_type.as_str()).or_default();
            let bytes = (out.bytes > 0 || out.count == 0).then_some(out.bytes);
            let fits = files.last().is_some_and(|f| {
                f.count + out.count <= limits.resources
                    && f.bytes.zip(bytes).is_some_and(|(a, b)| a + b <= limits.bytes)
            });
            if !fits {
                files.push(ServedFile {
                    resource_type: out.resource_type.clone(),
                    name: file_name(&out.resource_type, files.len() + 1),
                    count: 0,
                    bytes: Some(0),
                    pieces: Vec::new(),
                    units: Vec::new(),
                });
            }
            if let Some(f) = files.last_mut() {
                f.count += out.count;
                f.bytes = f.bytes.zip(bytes).map(|(a, b)| a + b);
                f.pieces.push((out.file.clone(), bytes));
                if f.units.last() != Some(&unit.seq) {
                    f.units.push(unit.seq);
                }
            }
        }
    }
    by_type.into_values().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::jobs::UnitOutput;

    fn unit(seq: i64, outputs: &[(&str, u64, u64)]) -> DoneUnit {
        DoneUnit {
            seq,
            done_by: "gw/w0".into(),
            patients: vec![format!("p{seq}")],
            outputs: outputs
                .iter()
                .enumerate()
                .map(|(i, (t, count, bytes))| UnitOutput {
                    resource_type: t.to_string(),
                    file: format!("{seq}/a/{t}.{}.ndjson", i + 1),
                    count: *count,
                    bytes: *bytes,
                })
                .collect(),
        }
    }

    #[test]
    fn units_pieces_are_packed_into_files_up_to_the_limits() {
        let units = vec![
            unit(1, &[("Observation", 40, 4000), ("Patient", 1, 100)]),
            unit(0, &[("Observation", 50, 5000), ("Patient", 1, 100)]),
            unit(2, &[("Observation", 30, 3000), ("Patient", 1, 100)]),
        ];
        let files = pack(&units, Limits { resources: 100, bytes: 1_000_000 });
        let summary: Vec<(&str, u64, Vec<i64>)> =
            files.iter().map(|f| (f.name.as_str(), f.count, f.units.clone())).collect();
        assert_eq!(
            summary,
            vec![
                ("Observation.1.ndjson", 90, vec![0, 1]),
                ("Observation.2.ndjson", 30, vec![2]),
                ("Patient.1.ndjson", 3, vec![0, 1, 2])
            ]
        );
        assert_eq!(files[0].bytes, Some(9000));
        assert_eq!(files[0].pieces[0].0, "0/a/Observation.1.ndjson", "in unit order");

        // The byte limit cuts too.
        let by_bytes = pack(&units, Limits { resources: 1000, bytes: 8000 });
        assert_eq!(by_bytes.iter().filter(|f| f.resource_type == "Observation").count(), 2);

        // A piece whose length was not recorded (a unit finished by an older gateway) stands alone.
        let old = vec![unit(0, &[("Patient", 1, 0)]), unit(1, &[("Patient", 1, 0)])];
        assert_eq!(pack(&old, Limits { resources: 10, bytes: 10_000 }).len(), 2);
    }
}
