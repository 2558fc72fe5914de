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

    #[test]
    fn every_language_has_exactly_the_keys_of_the_english_file() {
        let en = keys(include_str!("../../locales/en/main.ftl"));
        assert!(en.len() > 10);
        for (lang, ftl) in [
            ("de", include_str!("../../locales/de/main.ftl")),
            ("fr", include_str!("../../locales/fr/main.ftl")),
            ("it", include_str!("../../locales/it/main.ftl")),
        ] {
            assert_eq!(keys(ftl), en, "{lang}");
        }
        let args = HashMap::from([
            (Cow::Borrowed("phone"), FluentValue::from("1")),
            (Cow::Borrowed("hours"), FluentValue::from("2")),
        ]);
        for lang in Language::ALL {
            for key in &en {
                let found = LOCALES.try_lookup_with_args(&lang_id(lang), key, &args);
                assert!(found.is_some(), "{lang}: {key} does not format");
            }
        }
    }

    #[test]
    fn french_is_french() {
        assert_eq!(translate(Language::Fr, "login-submit"), "Se connecter");
        assert_eq!(translate(Language::De, "login-submit"), "Anmelden");
    }
}
