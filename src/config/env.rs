//! `PORTICO_…` environment overrides: `PORTICO_SERVER__LISTEN=0.0.0.0:8080` sets
//! `server.listen`; `PORTICO_SOURCES__0__URL=…` sets `sources[0].url`. Values are read as
//! TOML scalars when they parse as one (numbers, booleans), else as strings.

/// Variables the CLI reads itself; they are not config keys.
const NOT_KEYS: &[&str] = &["PORTICO_CONFIG", "PORTICO_LOG", "PORTICO_LOG_FORMAT", crate::auth::keyring::KEK_ENV];

/// Applies every `PORTICO_` variable to the parsed table. Errors carry the key.
pub fn apply_overrides(table: &mut toml::Table, vars: &[(String, String)]) -> Result<(), (String, String)> {
    let mut vars: Vec<&(String, String)> = vars.iter().filter(|(k, _)| k.starts_with("PORTICO_")).collect();
    vars.sort();
    for (name, raw) in vars {
        if NOT_KEYS.contains(&name.as_str()) {
            continue;
        }
        let path: Vec<String> = name["PORTICO_".len()..].split("__").map(str::to_ascii_lowercase).collect();
        if path.len() < 2 || path.iter().any(String::is_empty) {
            return Err((
                name.clone(),
                "environment override must name a section and a key, e.g. PORTICO_SERVER__LISTEN".into(),
            ));
        }
        set(table, &path, scalar(raw)).map_err(|m| (path.join("."), format!("{m} (from {name})")))?;
    }
    Ok(())
}

fn scalar(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else { return Err("the variable names no setting".into()) };
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    set_in(entry, rest, value)
}

fn set_in(node: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    match node {
        toml::Value::Table(t) => set(t, path, value),
        toml::Value::Array(items) => {
            let index: usize = path[0].parse().map_err(|_| format!("`{}` is not an index into a list", path[0]))?;
            let len = items.len();
            let item =
                items.get_mut(index).ok_or_else(|| format!("index {index} is past the {len} entries in the file"))?;
            if path.len() == 1 {
                *item = value;
                Ok(())
            } else {
                set_in(item, &path[1..], value)
            }
        }
        _ => Err("is not a section".into()),
    }
}
