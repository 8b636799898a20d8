//! nesca.toml read and edited line by line (enough for the demo configuration).

/// The value of `key = "value"` in a TOML section, read line by line (enough for nesca.toml).
pub(crate) fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            if k.trim() == key {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// `text` with the value of `key` in `[section]` replaced by the string `value`; panics if the
/// key is not there.
#[track_caller]
pub(crate) fn toml_replace(text: &str, section: &str, key: &str, value: &str) -> String {
    toml_replace_raw(text, section, key, &format!("\"{value}\""))
}

/// `text` with `key = …` in `[section]` replaced by the bare TOML `value` (an integer, a
/// boolean: written without quotes); panics if the key is not there.
#[track_caller]
pub(crate) fn toml_replace_raw(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut in_section = false;
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
        } else if in_section && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            out.push_str(&format!("{key} = {value}\n"));
            found = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(found, "nesca.toml has no `{key}` in [{section}]:\n{text}");
    out
}

/// `text` with `key = value` (a bare TOML value) in `[section]`: replaced if the key is there,
/// else added as the section's first key; panics if the section is not there.
#[track_caller]
pub(crate) fn toml_set_raw(text: &str, section: &str, key: &str, value: &str) -> String {
    if toml_value(text, section, key).is_some() {
        return toml_replace_raw(text, section, key, value);
    }
    let header = format!("[{section}]");
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == header {
            out.push_str(&format!("{key} = {value}\n"));
            found = true;
        }
    }
    assert!(found, "nesca.toml has no [{section}]:\n{text}");
    out
}
