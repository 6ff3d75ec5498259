//! The patient index's rows: writing one source record — its demographics, blocking keys,
//! link and possible matches — inside a write transaction, and the merges that follow.
//! Candidates are the records of other sources sharing a blocking key; the verdict on each
//! is [`super::matching::compare`]'s, never decided here. Never calls a source, never
//! holds more than one record's candidates in memory.

use super::matching::{Demographics, Verdict, compare};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::BTreeSet;

pub(super) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Index writes by every replica take turns: the first statement of each write
/// transaction updates the one lock row (SQLite: the write lock; PostgreSQL: a row lock
/// held to commit), so candidates read after it are never made stale by another writer.
pub(super) async fn take_turn(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE index_rebuild_lock SET generation = generation + 1 WHERE id = 1").execute(&mut **tx).await?;
    Ok(())
}

fn hashed(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// The key under which records holding identifier value `value` (any system) are found.
pub(super) fn identifier_value_key(value: &str) -> String {
    hashed(&format!("iv|{}", value.trim().to_ascii_lowercase()))
}

/// The blocking keys of a record. Every pair `compare` could call anything but
/// `Different` shares one: an identifier, or the birth date together with a phone, an
/// address, or a family and a given name.
pub(super) fn blocking_keys(d: &Demographics) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (system, value) in &d.identifiers {
        keys.insert(hashed(&format!("id|{system}|{value}")));
        keys.insert(identifier_value_key(value));
    }
    if let Some(born) = &d.birth_date {
        for phone in &d.phones {
            keys.insert(hashed(&format!("bp|{born}|{phone}")));
        }
        for address in &d.addresses {
            keys.insert(hashed(&format!("ba|{born}|{address}")));
        }
        for family in &d.families {
            for given in &d.givens {
                keys.insert(hashed(&format!("bn|{born}|{family}|{given}")));
            }
        }
    }
    keys
}

/// The record this one was merged into by its source (`Patient.link` of type
/// `replaced-by` to a Patient of the same source).
pub(super) fn replaced_by(patient: &Value) -> Option<String> {
    patient.get("link").and_then(Value::as_array).into_iter().flatten().find_map(|l| {
        if l.get("type").and_then(Value::as_str) != Some("replaced-by") {
            return None;
        }
        let reference = l.pointer("/other/reference").and_then(Value::as_str)?;
        match crate::fhir::reference::parse_local(reference, None)? {
            ("Patient", id) if crate::fhir::is_valid_id(id) => Some(id.to_string()),
            _ => None,
        }
    })
}

pub(super) fn new_gateway_id() -> String {
    format!("pt-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

pub(super) async fn gateway_id(tx: &mut Tx, source: &str, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT gateway_id FROM patient_links WHERE source = $1 AND source_patient_id = $2")
        .bind(source)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn add_member(
    tx: &mut Tx,
    source: &str,
    id: &str,
    gid: &str,
    reason: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patient_links (source, source_patient_id, gateway_id, reason, linked_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(source)
    .bind(id)
    .bind(gid)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves every member of `old` under `survivor`; `old` keeps resolving as an alias.
async fn merge_link(tx: &mut Tx, old: &str, survivor: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE patient_links SET gateway_id = $1 WHERE gateway_id = $2")
        .bind(survivor)
        .bind(old)
        .execute(&mut **tx)
        .await?;
    alias(tx, old, survivor).await
}

async fn alias(tx: &mut Tx, old: &str, survivor: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM patient_id_aliases WHERE old_id = $1").bind(old).execute(&mut **tx).await?;
    sqlx::query("INSERT INTO patient_id_aliases (old_id, gateway_id) VALUES ($1, $2)")
        .bind(old)
        .bind(survivor)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE patient_id_aliases SET gateway_id = $1 WHERE gateway_id = $2")
        .bind(survivor)
        .bind(old)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes one record read from `source`. Returns whether anything changed: a record read
/// again as it was (same demographics, same merge) and already linked is left alone.
pub(super) async fn ingest(tx: &mut Tx, source: &str, patient: &Value, now: &str) -> Result<bool, sqlx::Error> {
    let Some(id) = crate::fhir::resource_id(patient) else { return Ok(false) };
    let demographics = Demographics::of(patient);
    let merged_into = replaced_by(patient).filter(|target| target != id);
    let text = serde_json::to_string(&demographics).unwrap_or_default();
    let digest = hashed(&format!("{text}|{}", merged_into.as_deref().unwrap_or("")));
    // What the index holds of this record, in one statement: its digest (no row: read for
    // the first time, so it has no keys and no possible matches to remove) and its link.
    let row = sqlx::query(
        "SELECT (SELECT digest FROM index_records WHERE source = $1 AND source_patient_id = $2),
                (SELECT gateway_id FROM patient_links WHERE source = $1 AND source_patient_id = $2)",
    )
    .bind(source)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let stored: Option<String> = row.get(0);
    let linked: Option<String> = row.get(1);
    if stored.as_deref() == Some(digest.as_str()) && linked.is_some() {
        return Ok(false);
    }
    if stored.is_some() {
        for statement in [
            "DELETE FROM index_records WHERE source = $1 AND source_patient_id = $2",
            "DELETE FROM index_keys WHERE source = $1 AND source_patient_id = $2",
            "DELETE FROM index_possible_matches WHERE (a_source = $1 AND a_id = $2) OR (b_source = $1 AND b_id = $2)",
        ] {
            sqlx::query(statement).bind(source).bind(id).execute(&mut **tx).await?;
        }
    }
    sqlx::query(
        "INSERT INTO index_records (source, source_patient_id, demographics, digest, replaced_by, read_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(source)
    .bind(id)
    .bind(&text)
    .bind(&digest)
    .bind(merged_into.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;

    if let Some(target) = merged_into {
        // Merged away by its source: never a candidate again; one person with the record
        // that replaced it (which may not have been read yet: it gets its link now).
        let survivor = match gateway_id(tx, source, &target).await? {
            Some(g) => g,
            None => {
                let g = linked.clone().unwrap_or_else(new_gateway_id);
                add_member(tx, source, &target, &g, "first record of this person", now).await?;
                g
            }
        };
        let reason = format!("replaced by {source}/{target} in its source");
        match &linked {
            Some(old) if *old != survivor => {
                sqlx::query(
                    "UPDATE patient_links SET gateway_id = $1, reason = $2 WHERE source = $3 AND source_patient_id = $4",
                )
                .bind(&survivor)
                .bind(&reason)
                .bind(source)
                .bind(id)
                .execute(&mut **tx)
                .await?;
                let left = sqlx::query("SELECT source FROM patient_links WHERE gateway_id = $1 LIMIT 1")
                    .bind(old)
                    .fetch_optional(&mut **tx)
                    .await?;
                if left.is_none() {
                    alias(tx, old, &survivor).await?;
                }
            }
            Some(_) => {}
            None => add_member(tx, source, id, &survivor, &reason, now).await?,
        }
        return Ok(true);
    }

    let keys = blocking_keys(&demographics);
    insert_keys(tx, source, id, &keys).await?;
    let mut same: Vec<(String, String, String)> = Vec::new();
    let mut possible: Vec<(String, String, String)> = Vec::new();
    let mut gids: BTreeSet<String> = linked.iter().cloned().collect();
    for c in candidates(tx, source, &keys).await? {
        let Ok(theirs) = serde_json::from_str::<Demographics>(&c.demographics) else { continue };
        match compare(&theirs, &demographics) {
            Verdict::Same(reason) => {
                gids.extend(c.gateway_id);
                same.push((c.source, c.id, reason));
            }
            Verdict::Possible(reason) => possible.push((c.source, c.id, reason)),
            Verdict::Different => {}
        }
    }
    let survivor = gids.iter().next().cloned().unwrap_or_else(new_gateway_id);
    for other in gids.iter().skip(1) {
        merge_link(tx, other, &survivor).await?;
    }
    if linked.is_none() {
        let reason = same
            .first()
            .map_or_else(|| "first record of this person".to_string(), |(s, i, r)| format!("{r} with {s}/{i}"));
        add_member(tx, source, id, &survivor, &reason, now).await?;
    }
    for (c_source, c_id, reason) in possible {
        let (a, b) = if (c_source.as_str(), c_id.as_str()) < (source, id) {
            ((c_source.as_str(), c_id.as_str()), (source, id))
        } else {
            ((source, id), (c_source.as_str(), c_id.as_str()))
        };
        sqlx::query(
            "INSERT INTO index_possible_matches (a_source, a_id, b_source, b_id, reason) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.0)
        .bind(a.1)
        .bind(b.0)
        .bind(b.1)
        .bind(&reason)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Keys per INSERT statement (three parameters each, well under any database's limit).
const KEYS_PER_INSERT: usize = 100;

/// Writes a record's blocking keys, many rows per statement.
async fn insert_keys(tx: &mut Tx, source: &str, id: &str, keys: &BTreeSet<String>) -> Result<(), sqlx::Error> {
    let keys: Vec<&String> = keys.iter().collect();
    for chunk in keys.chunks(KEYS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, $1, $2)", i + 3)).collect();
        let sql =
            format!("INSERT INTO index_keys (blocking_key, source, source_patient_id) VALUES {}", rows.join(", "));
        let mut query = sqlx::query(&sql).bind(source).bind(id);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A record of another source sharing a blocking key, with its link (if any).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    source: String,
    id: String,
    demographics: String,
    gateway_id: Option<String>,
}

/// Records of other sources sharing a key with this one, with their demographics and
/// gateway ids, in a stable order (one statement for up to 50 keys).
async fn candidates(tx: &mut Tx, source: &str, keys: &BTreeSet<String>) -> Result<Vec<Candidate>, sqlx::Error> {
    let mut found: BTreeSet<Candidate> = BTreeSet::new();
    let keys: Vec<&String> = keys.iter().collect();
    for chunk in keys.chunks(50) {
        let slots: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT DISTINCT r.source, r.source_patient_id, r.demographics, l.gateway_id FROM index_keys k
             JOIN index_records r ON r.source = k.source AND r.source_patient_id = k.source_patient_id
             LEFT JOIN patient_links l ON l.source = r.source AND l.source_patient_id = r.source_patient_id
             WHERE k.source <> $1 AND k.blocking_key IN ({})",
            slots.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(source);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for row in query.fetch_all(&mut **tx).await? {
            found.insert(Candidate {
                source: row.get(0),
                id: row.get(1),
                demographics: row.get(2),
                gateway_id: row.get(3),
            });
        }
    }
    Ok(found.into_iter().collect())
}
