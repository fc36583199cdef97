//! Persona files: the shipped population, rendering, templates, and the errors that broken
//! files produce (file, line and field named).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use vsim::persona::{load_persona_dir, load_persona_file, parse_persona, Persona, PersonaError};

fn personas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("personas")
}

/// True if `text` contains `word` as a whole word (so "NA" does not match "NATO" or "Nancy").
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| w == word)
}

#[test]
fn shipped_personas_load_in_file_order_with_ids_from_file_stems() -> Result<()> {
    let personas = load_persona_dir(personas_dir())?;
    assert!(personas.len() >= 12, "only {} personas", personas.len());

    let mut stems: Vec<String> = std::fs::read_dir(personas_dir())?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    stems.sort();
    let ids: Vec<&str> = personas.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, stems.iter().map(String::as_str).collect::<Vec<_>>());

    for p in &personas {
        assert!(p.name.is_some(), "{} has no name", p.id);
        assert!(p.description.as_deref().is_some_and(|d| d.len() > 100), "{} has a thin description", p.id);
        for key in ["age", "occupation", "household_income", "religion", "politics", "personality", "values"]
        {
            assert!(p.attribute(key).is_some(), "{} lacks attribute {key}", p.id);
        }
        let source = p.source.as_deref().unwrap_or_default();
        assert!(source.ends_with(&format!("{}.toml", p.id)), "source {source:?}");
    }
    Ok(())
}

#[test]
fn shipped_population_is_varied() -> Result<()> {
    let personas = load_persona_dir(personas_dir())?;
    let ages: Vec<u32> =
        personas.iter().map(|p| p.attribute("age").unwrap_or("0").parse()).collect::<Result<_, _>>()?;
    let (min, max) = (ages.iter().min().copied().unwrap_or(0), ages.iter().max().copied().unwrap_or(0));
    assert!(min <= 25 && max >= 65, "ages {min}..{max}");

    let distinct =
        |key: &str| personas.iter().filter_map(|p| p.attribute(key)).collect::<BTreeSet<_>>().len();
    assert!(distinct("religion") >= 8);
    assert!(distinct("politics") >= 5);
    assert!(distinct("location") >= 12);
    assert!(distinct("gender") >= 3);

    // Attitudes to giving: some generous, some sceptical, some busy or indifferent.
    let giving = |needle: &str| {
        personas
            .iter()
            .filter(|p| {
                let text =
                    format!("{} {}", p.description.as_deref().unwrap_or(""), p.render()).to_lowercase();
                text.contains(needle)
            })
            .count()
    };
    assert!(giving("generous") + giving("tithes") >= 3);
    assert!(giving("sceptical") + giving("suspicious") + giving("distrust") + giving("wary") >= 3);
    assert!(giving("busy") + giving("short on time") + giving("rarely gives") >= 3);
    Ok(())
}

#[test]
fn rendering_is_third_person_and_never_shows_missing_markers() -> Result<()> {
    for p in load_persona_dir(personas_dir())? {
        let text = p.render();
        assert!(text.starts_with(&format!("Name: {}\n", p.name.as_deref().unwrap_or_default())), "{text}");
        assert!(text.contains(p.description.as_deref().unwrap_or_default()));
        assert!(text.contains(&format!("Age: {}", p.attribute("age").unwrap_or_default())));
        for marker in ["NA", "nan", "NaN", "you", "You"] {
            assert!(!has_word(&text, marker), "{}: {marker:?} in\n{text}", p.id);
        }
    }
    Ok(())
}

#[test]
fn attributes_keep_file_order_and_values_become_text() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "id = \"p1\"\n[attributes]\nzeta = \"last letter, first line\"\nage = 34\nscore = 4.5\nvegan = true\n\
         member_since = 2019-05-01\nreligion = \"NA\"\nalpha = \"a\"\n",
    )?;
    let p = load_persona_file(&path)?;
    let keys: Vec<&str> = p.attributes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["zeta", "age", "score", "vegan", "member_since", "religion", "alpha"]);
    assert_eq!(p.attribute("age"), Some("34"));
    assert_eq!(p.attribute("score"), Some("4.5"));
    assert_eq!(p.attribute("vegan"), Some("true"));
    assert_eq!(p.attribute("member_since"), Some("2019-05-01"));
    assert_eq!(
        p.render(),
        "Zeta: last letter, first line\nAge: 34\nScore: 4.5\nVegan: true\nMember since: 2019-05-01\nAlpha: a"
    );

    // JSON keeps the order too, and reads back to the same persona.
    let json = serde_json::to_string(&p)?;
    assert!(json.find("\"zeta\"") < json.find("\"alpha\""), "{json}");
    let back: Persona = serde_json::from_str(&json)?;
    assert_eq!(back, p);
    Ok(())
}

#[test]
fn templates_fill_slots_and_reject_undefined_ones() -> Result<()> {
    let p = load_persona_file(personas_dir().join("retired_teacher_ohio.toml"))?;
    let out = p.render_with("{{ persona.id }} | {{ persona.attributes.age }} | {{ persona.description }}")?;
    assert_eq!(out, format!("retired_teacher_ohio | 68 | {}", p.description.as_deref().unwrap_or_default()));
    assert_eq!(p.render_with("Profile:\n{{ persona.profile }}")?, format!("Profile:\n{}", p.render()));
    assert_eq!(
        p.render_with("{% if persona.attributes.shoe_size is defined %}x{% else %}none{% endif %}")?,
        "none"
    );

    let err = p.render_with("line one\n{{ persona.attributes.shoe_size }}").err();
    match err {
        Some(PersonaError::Template { id, line, message }) => {
            assert_eq!(id, "retired_teacher_ohio");
            assert_eq!(line, Some(2));
            assert!(message.contains("undefined"), "{message}");
            assert!(message.contains("persona.attributes.shoe_size"), "{message}");
        }
        other => panic!("expected a template error, got {other:?}"),
    }
    // An attribute holding a missing marker is not a defined slot either.
    let q = Persona::new("q").with_attribute("religion", "NA");
    assert!(q.render_with("{{ persona.attributes.religion }}").is_err());
    assert!(q.render_with("{{ persona.name }}").is_err());
    assert!(matches!(q.render_with("{{ persona.id "), Err(PersonaError::Template { .. })));
    Ok(())
}

/// Writes `text` to `name` in a fresh directory and loads it, expecting an error. The
/// directory is returned so that it lives as long as the caller needs the path.
fn broken(name: &str, text: &str) -> Result<(tempfile::TempDir, PathBuf, PersonaError)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(name);
    std::fs::write(&path, text)?;
    match load_persona_file(&path) {
        Ok(p) => anyhow::bail!("{name} loaded: {p:?}"),
        Err(e) => Ok((dir, path, e)),
    }
}

/// The error names the file and the expected line (and field, when given).
fn assert_points_at(path: &Path, err: &PersonaError, line: usize, field: Option<&str>, says: &str) {
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "no file in: {text}");
    assert_eq!(err.line(), Some(line), "{text}");
    assert!(text.contains(&format!(":{line}:")), "no line in: {text}");
    if let Some(field) = field {
        assert!(text.contains(&format!("field `{field}`")), "no field in: {text}");
    }
    assert!(text.contains(says), "expected {says:?} in: {text}");
}

#[test]
fn missing_id_is_reported() -> Result<()> {
    let (_dir, path, err) = broken("no_id.toml", "name = \"Ann\"\n[attributes]\nage = 3\n")?;
    assert_points_at(&path, &err, 1, Some("id"), "missing required field");
    Ok(())
}

#[test]
fn bad_id_characters_are_reported_at_the_id_line() -> Result<()> {
    let (_dir, path, err) = broken("bad_id.toml", "# a persona\n\nid = \"ann smith\"\nname = \"Ann\"\n")?;
    assert_points_at(&path, &err, 3, Some("id"), "found ' ' at position 4");
    if let PersonaError::Invalid { column, .. } = err {
        assert_eq!(column, 6);
    }
    let (_dir, path, err) = broken("empty_id.toml", "name = \"Ann\"\nid = \"\"\n")?;
    assert_points_at(&path, &err, 2, Some("id"), "non-empty");
    Ok(())
}

#[test]
fn unknown_fields_are_rejected_with_the_allowed_ones() -> Result<()> {
    let (_dir, path, err) = broken("typo.toml", "id = \"ann\"\nname = \"Ann\"\ndescripton = \"x\"\n")?;
    assert_points_at(&path, &err, 3, Some("descripton"), "unknown field `descripton`");
    assert!(err.to_string().contains("`description`"), "{err}");
    Ok(())
}

#[test]
fn nested_attribute_tables_are_rejected() -> Result<()> {
    let text = "id = \"ann\"\n[attributes]\nage = 40\n\n[attributes.big_five]\nopenness = 4\n";
    let (_dir, path, err) = broken("nested.toml", text)?;
    assert_points_at(&path, &err, 5, Some("attributes.big_five"), "nested table");
    assert!(err.to_string().contains("expected a string, number or boolean"), "{err}");

    let (_dir, path, err) =
        broken("inline.toml", "id = \"ann\"\n[attributes]\nbig_five = { openness = 4 }\n")?;
    assert_points_at(&path, &err, 3, Some("attributes.big_five"), "nested table");

    let (_dir, path, err) =
        broken("array.toml", "id = \"ann\"\n[attributes]\nage = 40\nhobbies = [\"a\", \"b\"]\n")?;
    assert_points_at(&path, &err, 4, Some("attributes.hobbies"), "found an array");
    Ok(())
}

#[test]
fn toml_syntax_errors_point_at_the_line() -> Result<()> {
    let (_dir, path, err) = broken("syntax.toml", "id = \"ann\"\nname = \"Ann\n[attributes]\n")?;
    assert_points_at(&path, &err, 2, None, "");
    let (_dir, path, err) = broken("no_equals.toml", "id = \"ann\"\n\n\nname \"Ann\"\n")?;
    assert_points_at(&path, &err, 4, None, "expected");
    Ok(())
}

#[test]
fn wrong_value_types_say_what_was_expected() -> Result<()> {
    let (_dir, path, err) = broken("type.toml", "id = \"ann\"\nname = 5\n")?;
    assert_points_at(&path, &err, 2, Some("name"), "expected a string");
    let (_dir, path, err) =
        broken("multiline.toml", "id = \"ann\"\ndescription = \"\"\"\nfine\n\"\"\"\nname = true\n")?;
    assert_points_at(&path, &err, 5, Some("name"), "expected a string");
    Ok(())
}

#[test]
fn duplicate_ids_in_a_directory_name_both_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("a.toml"), "id = \"same\"\n")?;
    std::fs::write(dir.path().join("b.toml"), "# copy\nname = \"B\"\nid = \"same\"\n")?;
    let err = load_persona_dir(dir.path()).err().ok_or_else(|| anyhow::anyhow!("duplicates accepted"))?;
    let b = dir.path().join("b.toml");
    assert_points_at(&b, &err, 3, Some("id"), "duplicate persona id `same`");
    assert!(err.to_string().contains(&dir.path().join("a.toml").display().to_string()), "{err}");
    Ok(())
}

#[test]
fn directories_load_only_toml_files_sorted_by_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("b.toml"), "id = \"alpha\"\n")?;
    std::fs::write(dir.path().join("a.toml"), "id = \"zulu\"\n")?;
    std::fs::write(dir.path().join("notes.md"), "not a persona")?;
    std::fs::create_dir(dir.path().join("sub.toml"))?;
    let ids: Vec<String> = load_persona_dir(dir.path())?.into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["zulu", "alpha"]);

    let empty = tempfile::tempdir()?;
    assert!(load_persona_dir(empty.path())?.is_empty());
    assert!(matches!(load_persona_dir(dir.path().join("absent")), Err(PersonaError::Io { .. })));
    Ok(())
}

#[test]
fn in_memory_personas_drop_blank_text_and_skip_missing_values() -> Result<()> {
    let p = parse_persona(
        "id = \"x-1\"\nname = \"  \"\ndescription = \"NA\"\n[attributes]\nreligion = \"nan\"\nage = 50\n",
        "inline.toml",
    )?;
    assert_eq!(p.name, None);
    assert_eq!(p.render(), "Age: 50");
    assert_eq!(p.source.as_deref(), Some("inline.toml"));
    Ok(())
}
