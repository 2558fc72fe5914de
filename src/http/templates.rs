//! Pages and mails rendered with minijinja from templates embedded at build time, with
//! translations from Fluent files under `locales/`.

use std::{borrow::Cow, collections::HashMap, sync::LazyLock};

use fluent_templates::{fluent_bundle::FluentValue, LanguageIdentifier, Loader};
use minijinja::{value::Kwargs, Environment, State, Value};

use crate::domain::Language;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Bidi isolation marks would show up in plain-text mails and titles.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    minijinja_embed::load_templates!(&mut env);
    env.add_function("t", translate_in_template);
    env
});

fn lang_id(lang: Language) -> LanguageIdentifier {
    lang.code().parse().unwrap_or_default()
}

/// The text of `key` in `lang`; a missing key shows as itself, never as an empty page.
pub fn translate(lang: Language, key: &str) -> String {
    LOCALES
        .try_lookup(&lang_id(lang), key)
        .unwrap_or_else(|| key.to_owned())
}

pub fn translate_with(lang: Language, key: &str, args: &[(&str, String)]) -> String {
    let args: HashMap<Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| (Cow::Owned((*k).to_owned()), FluentValue::from(v.clone())))
        .collect();
    LOCALES
        .try_lookup_with_args(&lang_id(lang), key, &args)
        .unwrap_or_else(|| key.to_owned())
}

/// `{{ t("login-title") }}` or `{{ t("password-rule", min=8) }}`, in the page's `lang`.
fn translate_in_template(
    state: &State,
    key: &str,
    kwargs: Kwargs,
) -> Result<String, minijinja::Error> {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(|s| s.parse::<Language>().ok()))
        .unwrap_or(Language::En);
    let mut args = Vec::new();
    for name in kwargs.args() {
        let value: Value = kwargs.get(name)?;
        args.push((name, value.to_string()));
    }
    Ok(if args.is_empty() {
        translate(lang, key)
    } else {
        translate_with(lang, key, &args)
    })
}

/// Renders a template; a failure is a bug in a template, reported as an internal error.
pub fn render(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ftl: &str) -> Vec<&str> {
        ftl.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && l.contains(" ="))
            .filter_map(|l| l.split(" =").next())
            .collect()
    }

    /// Every `.ftl` file of `locales/en/`, with the same file in each other language.
    fn ftl_files(lang: &str) -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(lang);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_language_has_exactly_the_keys_of_the_english_files() {
        let en = ftl_files("en");
        assert!(en.len() >= 2);
        let mut all_en_keys = Vec::new();
        for lang in ["de", "fr", "it"] {
            let other = ftl_files(lang);
            let names =
                |files: &[(String, String)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
            assert_eq!(names(&other), names(&en), "{lang}: the same files");
            for ((name, en_text), (_, text)) in en.iter().zip(&other) {
                assert_eq!(keys(text), keys(en_text), "{lang}/{name}");
            }
        }
        for (_, text) in &en {
            all_en_keys.extend(keys(text).into_iter().map(str::to_owned));
        }
        assert!(all_en_keys.len() > 10);
        let mut unique = all_en_keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all_en_keys.len(), "a key is defined twice");
        // Every key formats in every language with any argument a message may take.
        let args: HashMap<Cow<'static, str>, FluentValue> = [
            "phone", "hours", "realm", "link", "code", "minutes", "min", "max", "step", "steps",
            "time", "number", "date", "name", "count", "version", "n", "place", "days", "years",
            "address", "browser", "system", "email", "operator", "reason", "action", "first",
            "last",
        ]
        .into_iter()
        .map(|k| (Cow::Borrowed(k), FluentValue::from("1")))
        .collect();
        for lang in Language::ALL {
            for key in &all_en_keys {
                let found = LOCALES.try_lookup_with_args(&lang_id(lang), key, &args);
                assert!(found.is_some(), "{lang}: {key} does not format");
            }
        }
    }

    /// Every literal key a template asks for (`t("key")` or `t('key')`) exists.
    #[test]
    fn every_key_a_template_uses_exists() {
        let known: std::collections::HashSet<String> = ftl_files("en")
            .iter()
            .flat_map(|(_, text)| {
                keys(text)
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut stack = vec![root];
        let mut used = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for quote in ['"', '\''] {
                    let marker = format!("t({quote}");
                    for rest in text.split(&marker).skip(1) {
                        let key = rest.split(quote).next().unwrap();
                        let after = rest[key.len() + 1..].trim_start();
                        used += 1;
                        if after.starts_with('~') {
                            // A prefix completed at render time: some key must start with it.
                            assert!(
                                known.iter().any(|k| k.starts_with(key)),
                                "{}: no key starts with `{key}`",
                                path.display()
                            );
                        } else {
                            assert!(
                                known.contains(key),
                                "{}: `{key}` is in no locale file",
                                path.display()
                            );
                        }
                    }
                }
            }
        }
        assert!(used > 50, "only {used} keys found: the scan is broken");
    }

    #[test]
    fn french_is_french() {
        assert_eq!(translate(Language::Fr, "login-submit"), "Se connecter");
        assert_eq!(translate(Language::De, "login-submit"), "Anmelden");
    }
}
