//! Rebuilds the idp when a migration is added: `embed_migrations!` reads the migration folders
//! at compile time, and the compiler tracks only the files it read, so a new folder would
//! otherwise leave a binary that lacks it.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
