//! PersuasionForGood import: row counts of the real data, hand-checked personas, missing
//! values, the consistency filter and the seeded split. Tests that need the reference data
//! print a note and pass when it is absent; the synthetic-file tests always run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use vsim::data::persuasionforgood::{
    persona_from_participant, population_from_full_info, read_full_info, DataError, PfgDataset, PfgRole,
    DEFAULT_TEST_SIZE, FULL_INFO,
};

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/persuasionforgood"));
    if dir.join(FULL_INFO).is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping a test that needs the PersuasionForGood data", dir.display());
        None
    }
}

fn load() -> Result<Option<PfgDataset>> {
    Ok(match data_dir() {
        Some(dir) => Some(PfgDataset::load(dir)?),
        None => None,
    })
}

/// True if `text` contains `word` as a whole word.
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| w == word)
}

#[test]
fn real_data_has_the_documented_row_counts() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    assert_eq!(data.participants.len(), 2034);
    assert_eq!(data.with_role(PfgRole::Persuader).count(), 1017);
    assert_eq!(data.with_role(PfgRole::Persuadee).count(), 1017);
    assert_eq!(data.dialogues.len(), 1017);
    assert_eq!(data.dialogues.values().map(Vec::len).sum::<usize>(), 20932);

    // README facts about persuadees.
    let donations: Vec<f64> = data.with_role(PfgRole::Persuadee).filter_map(|p| p.donation).collect();
    assert_eq!(donations.len(), 1017);
    assert_eq!(donations.iter().filter(|d| **d == 0.0).count(), 472);
    assert_eq!(donations.iter().filter(|d| **d > 2.0).count(), 35);
    let turns = |n: u32| data.with_role(PfgRole::Persuadee).filter(|p| p.turns == Some(n)).count();
    assert_eq!((turns(10), turns(11), turns(12), turns(13), turns(14)), (655, 307, 40, 10, 3));

    // Each dialogue has exactly one participant of each role.
    for id in data.dialogues.keys() {
        assert!(data.participant(id, PfgRole::Persuader).is_some(), "{id}");
        assert!(data.participant(id, PfgRole::Persuadee).is_some(), "{id}");
    }
    // Missing cells: 14 rows without demographics, 7 without scores (287 cells in all).
    assert_eq!(data.participants.iter().filter(|p| p.age.is_none()).count(), 14);
    assert_eq!(data.participants.iter().filter(|p| p.big_five.openness.is_none()).count(), 7);
    Ok(())
}

#[test]
fn utterances_keep_text_with_commas_and_quotes_in_file_order() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    let dialogue = data.dialogue("20180904-045349_715_live").unwrap_or_default();
    assert!(dialogue.len() >= 20);
    assert_eq!(dialogue[0].text, "Good morning. How are you doing today?");
    assert_eq!((dialogue[0].turn, dialogue[0].role), (0, PfgRole::Persuader));
    assert_eq!(dialogue[3].text, "Haha. Same here, but it really feels like a Monday.");
    assert_eq!((dialogue[3].turn, dialogue[3].role), (1, PfgRole::Persuadee));
    assert!(dialogue.windows(2).all(|w| w[0].turn <= w[1].turn));
    Ok(())
}

#[test]
fn a_hand_checked_persuadee_renders_every_field() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    // Row 2 of full_info.csv: user_1810, the persuadee of the first dialogue.
    let p = data
        .participant("20180904-045349_715_live", PfgRole::Persuadee)
        .ok_or_else(|| anyhow::anyhow!("participant missing"))?;
    assert_eq!((p.row, p.user_id.as_str(), p.donation, p.turns), (2, "user_1810", Some(0.0), Some(11)));

    let persona = persona_from_participant(p);
    assert_eq!(persona.id, "20180904-045349_715_live-persuadee");
    let source = persona.source.as_deref().unwrap_or_default();
    assert!(source.contains("row 2") && source.contains("user_1810"), "{source}");
    assert_eq!(
        persona.render(),
        "Age: 50\n\
         Sex: Female\n\
         Race: White\n\
         Education: Less than four-year college\n\
         Income: $90,000 to $99,999 a year (survey code 10)\n\
         Employment: Employed for wages\n\
         Marital status: Married\n\
         Religion: Protestant\n\
         Political ideology: Conservative\n\
         Personality: Big Five, each scored 1 to 5: extraversion 3.2 (moderate), agreeableness 4.0 (high), \
         conscientiousness 3.8 (high), neuroticism 2.0 (low), openness 3.2 (moderate)\n\
         Strongest values: conformity 6.0, tradition 6.0, benevolence 6.0, universalism 6.0, security 6.0 \
         (Schwartz values, each scored 1 to 6)\n\
         Strong moral foundations: purity 4.7 (scored 4.5 or more on a 1 to 6 scale)\n\
         Decision style: more intuitive than rational (rational 3.5, intuitive 4.0, each scored 1 to 5)"
    );
    // Templates see the same attributes.
    assert_eq!(
        persona.render_with("{{ persona.attributes.age }}/{{ persona.attributes.religion }}")?,
        "50/Protestant"
    );

    // Its persuader (row 1, user_585): all ten values tie, so none is named as strongest.
    let q = data
        .participant("20180904-045349_715_live", PfgRole::Persuader)
        .map(persona_from_participant)
        .ok_or_else(|| anyhow::anyhow!("persuader missing"))?;
    assert_eq!(q.attribute("strongest_values"), None);
    assert_eq!(q.attribute("income"), Some("$40,000 to $49,999 a year (survey code 5)"));
    assert_eq!(
        q.attribute("decision_style"),
        Some("more rational than intuitive (rational 4.0, intuitive 2.0, each scored 1 to 5)")
    );
    Ok(())
}

#[test]
fn rows_with_missing_values_render_without_them() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    let render = |dialogue: &str| {
        data.participant(dialogue, PfgRole::Persuadee)
            .map(|p| persona_from_participant(p).render())
            .unwrap_or_default()
    };
    // user_1580: demographics empty, scores present.
    let text = render("20180723-042344_940_live");
    for absent in ["Age:", "Sex:", "Race:", "Education:", "Income:", "Religion:", "Political ideology:"] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
    assert!(text.contains("Personality: Big Five") && text.contains("Decision style:"), "{text}");
    // user_1246: scores empty, demographics present.
    let text = render("20180808-022005_838_live");
    assert!(text.contains("Age:") && text.contains("Religion:"), "{text}");
    for absent in ["Personality:", "Strongest values:", "Strong moral foundations:", "Decision style:"] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
    // user_2192: everything empty.
    assert_eq!(render("20180527-210026_713_live"), "");

    // No persona of either role ever shows a missing marker.
    for p in &data.participants {
        let text = persona_from_participant(p).render();
        for marker in ["NA", "nan", "NaN", "None", "null"] {
            assert!(!has_word(&text, marker), "{marker} in row {}:\n{text}", p.row);
        }
    }
    Ok(())
}

#[test]
fn populations_come_from_any_full_info_path() -> Result<()> {
    let Some(dir) = data_dir() else { return Ok(()) };
    let personas = population_from_full_info(dir.join(FULL_INFO), PfgRole::Persuadee)?;
    assert_eq!(personas.len(), 1017);
    let ids: BTreeSet<&str> = personas.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), 1017);
    assert!(personas.iter().all(|p| p.id.ends_with("-persuadee") && p.source.is_some()));
    assert!(personas.iter().all(|p| vsim::persona::check_id(&p.id).is_ok()));
    assert_eq!(population_from_full_info(dir.join(FULL_INFO), PfgRole::Persuader)?.len(), 1017);
    Ok(())
}

#[test]
fn the_consistency_filter_reports_what_it_dropped() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    let (kept, report) = data.filter_consistent();
    assert_eq!(report.total, 2034);
    assert_eq!(
        (report.persuadees.missing, report.persuadees.negative, report.persuadees.above_max),
        (0, 0, 35)
    );
    assert_eq!(
        (report.persuaders.missing, report.persuaders.negative, report.persuaders.above_max),
        (0, 0, 40)
    );
    assert_eq!(report.dropped().total(), 75);
    assert_eq!(report.kept, 1959);
    assert_eq!(report.kept_persuadees, 982);
    assert_eq!(kept.participants.len(), 1959);
    assert!(kept.participants.iter().all(|p| p.donation.is_some_and(|d| (0.0..=2.0).contains(&d))));
    assert_eq!(kept.dialogues.len(), 1017);
    let line = report.to_string();
    assert!(line.contains("kept 1959 of 2034") && line.contains("75 above $2"), "{line}");
    Ok(())
}

#[test]
fn the_split_is_seeded_deterministic_and_partitions_the_kept_persuadees() -> Result<()> {
    let Some(data) = load()? else { return Ok(()) };
    let (kept, _) = data.filter_consistent();
    let split = kept.train_test_split(DEFAULT_TEST_SIZE, 42)?;
    assert_eq!((split.test.len(), split.train.len()), (200, 782));
    assert!(split.test.iter().chain(&split.train).all(|p| p.role == PfgRole::Persuadee));

    let ids = |v: &[vsim::data::persuasionforgood::PfgParticipant]| {
        v.iter().map(|p| p.dialogue_id.clone()).collect::<BTreeSet<_>>()
    };
    let (test, train) = (ids(&split.test), ids(&split.train));
    assert!(test.is_disjoint(&train));
    assert_eq!(test.union(&train).count(), 982);
    // The unit is the dialogue: a participant who took part twice may be on both sides.
    // Each part keeps dataset order.
    assert!(split.test.windows(2).all(|w| w[0].row < w[1].row));

    assert_eq!(kept.train_test_split(200, 42)?, split);
    let other = kept.train_test_split(200, 43)?;
    assert_ne!(ids(&other.test), test);
    // Pinned: the split must not change with platform or dependency versions.
    let first: Vec<&str> = split.test.iter().take(3).map(|p| p.dialogue_id.as_str()).collect();
    assert_eq!(first, PINNED_FIRST_TEST_DIALOGUES);

    assert!(matches!(
        kept.train_test_split(983, 1),
        Err(DataError::SplitTooLarge { requested: 983, available: 982 })
    ));
    assert_eq!(kept.train_test_split(982, 1)?.train.len(), 0);
    Ok(())
}

const PINNED_FIRST_TEST_DIALOGUES: [&str; 3] =
    ["20180904-154250_98_live", "20180904-073734_888_live", "20180904-133536_2_live"];

const HEADER: &str =
    "B2,B3,B4,B6,B7,extrovert.x,agreeable.x,conscientious.x,neurotic.x,open.x,care.x,fairness.x,\
loyalty.x,authority.x,purity.x,freedom.x,conform.x,tradition.x,benevolence.x,universalism.x,self_direction.x,\
stimulation.x,hedonism.x,achievement.x,power.x,security.x,rational.x,intuitive.x,age.x,sex.x,race.x,edu.x,\
marital.x,employment.x,income.x,religion.x,ideology.x";

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[test]
fn synthetic_rows_with_quotes_na_and_nan_are_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rows = [
        "d1,u1,0,1.5,10,NA,NA,NA,NA,NA,5,5,5,5,5,5,1,2,3,4,5,6,1,2,3,4,nan,,41,Male,White,\"College, some\",Married,NA,13,NA,Liberal",
        "d1,u2,1,,10,1,2,3,4,5,1,1,1,1,1,1,3,3,3,3,3,3,3,3,3,3,2,3,,,,,,,NA,,",
    ];
    let path = write(dir.path(), "info.csv", &format!("{HEADER}\n{}\n{}\n", rows[0], rows[1]))?;
    let people = read_full_info(&path)?;
    assert_eq!(people.len(), 2);
    let (a, b) = (&people[0], &people[1]);
    assert_eq!(a.education.as_deref(), Some("College, some"));
    assert_eq!(
        (a.employment.as_deref(), a.religion.as_deref(), a.rational, a.intuitive),
        (None, None, None, None)
    );
    assert_eq!((b.donation, b.age, b.income_code), (None, None, None));

    let text = persona_from_participant(a).render();
    assert_eq!(
        text,
        "Age: 41\nSex: Male\nRace: White\nEducation: College, some\nIncome: survey code 13 (no known bracket)\n\
         Marital status: Married\nPolitical ideology: Liberal\n\
         Strongest values: stimulation 6.0, self-direction 5.0, universalism 4.0, security 4.0 \
         (Schwartz values, each scored 1 to 6)\n\
         Strong moral foundations: care 5.0, fairness 5.0, loyalty 5.0, authority 5.0, purity 5.0, freedom 5.0 \
         (scored 4.5 or more on a 1 to 6 scale)"
    );
    let text = persona_from_participant(b).render();
    assert!(text.contains("Strong moral foundations: none (no foundation scored 4.5"), "{text}");
    assert!(!text.contains("Strongest values"), "{text}");
    assert!(text.contains("Decision style: more intuitive than rational"), "{text}");
    Ok(())
}

#[test]
fn bad_cells_and_headers_name_the_file_and_row() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let good = "d1,u1,0,1,10,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,30,Male,White,x,Married,x,3,x,x";
    let bad = "d2,u3,1,two dollars,10,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,30,Male,White,x,Married,x,3,x,x";
    let path = write(dir.path(), "bad.csv", &format!("{HEADER}\n{good}\n{bad}\n"))?;
    let err = read_full_info(&path).err().ok_or_else(|| anyhow::anyhow!("bad cell accepted"))?;
    assert!(matches!(&err, DataError::Field { row: 2, line: 3, column, .. } if column == "B6"), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("bad.csv") && text.contains("row 2") && text.contains("\"two dollars\""), "{text}");

    let role = good.replacen(",0,", ",7,", 1);
    let path = write(dir.path(), "role.csv", &format!("{HEADER}\n{role}\n"))?;
    let err = read_full_info(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("role.csv") && err.contains("`B4`") && err.contains("0 (persuader) or 1"), "{err}");

    let age = good.replacen(",30,", ",30.5,", 1);
    let path = write(dir.path(), "age.csv", &format!("{HEADER}\n{age}\n"))?;
    assert!(matches!(read_full_info(&path), Err(DataError::Field { column, .. }) if column == "age.x"));

    let path = write(dir.path(), "short.csv", &format!("{HEADER}\nd1,u1,0\n"))?;
    let err = read_full_info(&path).err().ok_or_else(|| anyhow::anyhow!("short row accepted"))?;
    assert!(matches!(err, DataError::Csv { line: 2, .. }), "{err:?}");

    let path = write(dir.path(), "header.csv", "B2,B3,B4\nd1,u1,0\n")?;
    let err = read_full_info(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("header.csv") && err.contains("missing column `B6`"), "{err}");

    let err = PfgDataset::load(dir.path().join("nowhere")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("nowhere") && err.contains(FULL_INFO), "{err}");
    Ok(())
}

/// A participant row given twice (the same dialogue and role) is refused, naming both rows:
/// kept, it would change the filtered population and its test split.
#[test]
fn a_duplicated_participant_row_is_refused() -> Result<()> {
    let Some(dir) = data_dir() else { return Ok(()) };
    let text = std::fs::read_to_string(dir.join(FULL_INFO))?;
    let mut lines: Vec<&str> = text.lines().collect();
    let second = lines[2];
    lines.push(second);
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join(FULL_INFO);
    std::fs::write(&file, lines.join("\n") + "\n")?;
    let e = read_full_info(&file).unwrap_err();
    let rows = lines.len() - 1;
    assert!(
        matches!(e, DataError::Field { ref column, row, .. } if column == "B2" && row == rows as u64),
        "{e}"
    );
    assert!(e.to_string().contains("row 2 is already this dialogue's"), "{e}");
    Ok(())
}
