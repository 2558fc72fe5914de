fn main() {
    minijinja_embed::embed_templates!("templates");
    // sqlx::migrate! embeds the migration files; a new or changed one must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
