//! The README's library snippet is this example's `main`, verbatim: the snippet is
//! compiled and run because the example is.

#[test]
fn the_readme_shows_this_examples_main_verbatim() {
    let readme = include_str!("../../../README.md");
    let main = include_str!("../src/main.rs");
    let marker = "<!-- excerpt: examples/minimal-axum/src/main.rs -->\n```rust\n";
    let start = readme
        .find(marker)
        .expect("the excerpt marker in the README")
        + marker.len();
    let len = readme[start..].find("```").expect("the end of the excerpt");
    let excerpt = &readme[start..start + len];
    assert!(excerpt.contains("async fn main()"), "{excerpt}");
    assert!(
        main.contains(excerpt),
        "README excerpt differs from src/main.rs:\n{excerpt}"
    );
}
