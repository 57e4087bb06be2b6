//! `model.conf`: the sections and definitions the decision table is built
//! on, and the bounds on the matcher and effect that keep a hostile model
//! from stalling or crashing casbin's expression engine.

use schakel_kit::validate::Invalid;

use super::at;

/// The definitions `model.conf` must have: the compiled decision table
/// reads requests and rules in these shapes. (The matcher and effect are
/// checked by comparing every decision with casbin's own, see [`crate::proof`].)
const MODEL_SHAPE: [(&str, &str, &str); 6] = [
    ("request_definition", "r", "sub, role, obj, act, phase"),
    ("policy_definition", "p", "sub, role, obj, act, phase, eft"),
    ("role_definition", "g", "_, _"),
    ("role_definition", "g2", "_, _"),
    ("role_definition", "g3", "_, _"),
    ("policy_effect", "e", ""),
];

/// Bounds on the matcher, far above what a need-to-know model needs (the
/// repository's: 250 characters, one level of brackets, 14 operators) and
/// far below what stalls casbin's expression engine or overflows its stack
/// (2,000 nested brackets or 5,000 `!` abort the process; 5,000 terms run
/// the proof past 10 s).
const MAX_MATCHER_BYTES: usize = 2_000;
const MAX_MATCHER_DEPTH: usize = 8;
const MAX_MATCHER_OPERATORS: usize = 64;
const MAX_MATCHER_NEGATIONS: usize = 16;

/// The matcher within [`MAX_MATCHER_BYTES`], [`MAX_MATCHER_DEPTH`] levels of
/// brackets, [`MAX_MATCHER_OPERATORS`] `&&`/`||` and
/// [`MAX_MATCHER_NEGATIONS`] `!`.
fn check_matcher(value: &str) -> Result<(), String> {
    if value.len() > MAX_MATCHER_BYTES {
        return Err(format!(
            "the matcher is longer than {MAX_MATCHER_BYTES} bytes"
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in value.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or("the matcher closes a bracket it never opened")?;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("the matcher leaves a bracket open".into());
    }
    if deepest > MAX_MATCHER_DEPTH {
        return Err(format!(
            "the matcher nests brackets deeper than {MAX_MATCHER_DEPTH}"
        ));
    }
    let operators = value.matches("&&").count() + value.matches("||").count();
    if operators > MAX_MATCHER_OPERATORS {
        return Err(format!(
            "the matcher has more than {MAX_MATCHER_OPERATORS} && and || operators"
        ));
    }
    let negations = value.matches('!').count() - value.matches("!=").count();
    if negations > MAX_MATCHER_NEGATIONS {
        return Err(format!(
            "the matcher has more than {MAX_MATCHER_NEGATIONS} negations"
        ));
    }
    Ok(())
}

/// Checks the shape of `model.conf`: its sections and the request, policy and
/// role definitions the decision table relies on, and the matcher's bounds.
pub fn check_model(text: &str) -> Result<(), Invalid> {
    const FILE: &str = "model_conf";
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut section = String::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            if !matches!(
                section.as_str(),
                "request_definition"
                    | "policy_definition"
                    | "role_definition"
                    | "policy_effect"
                    | "matchers"
            ) {
                return Err(at(FILE, i + 1, format!("unknown section [{section}]")));
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(at(FILE, i + 1, "expected `key = value` or a [section]"));
        };
        let (key, value) = (key.trim(), squash(value.trim()));
        if section.is_empty() {
            return Err(at(FILE, i + 1, "a definition outside any section"));
        }
        if let Some((_, _, want)) = MODEL_SHAPE
            .iter()
            .find(|(s, k, _)| *s == section && *k == key)
        {
            if want.is_empty() {
                check_matcher(&value).map_err(|message| at(FILE, i + 1, message))?;
            } else if value != *want {
                return Err(at(
                    FILE,
                    i + 1,
                    format!("{key} must be `{want}`: the broker's decision table is built on it"),
                ));
            }
        } else if section == "matchers" && key == "m" {
            check_matcher(&value).map_err(|message| at(FILE, i + 1, message))?;
        } else {
            return Err(at(
                FILE,
                i + 1,
                format!("{key} is not part of Schakel's model (r, p, g, g2, g3, e, m)"),
            ));
        }
        if seen.iter().any(|(s, k)| *s == section && k == key) {
            return Err(at(FILE, i + 1, format!("{key} is defined twice")));
        }
        seen.push((section.clone(), key.to_owned()));
    }
    for (section, key, _) in MODEL_SHAPE.iter().chain([&("matchers", "m", "")]) {
        if !seen.iter().any(|(s, k)| s == section && k == key) {
            return Err(at(
                FILE,
                text.lines().count().max(1),
                format!("[{section}] {key} is missing"),
            ));
        }
    }
    Ok(())
}
