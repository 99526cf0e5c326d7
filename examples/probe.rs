use sealdex::*;
fn main() {
    let src = std::env::args().nth(1).unwrap();
    let inverted: bool = std::env::args().nth(2).unwrap().parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(
        &tmp.path().join("i"),
        &Credential::AppKey(SecretKey::from_bytes([1; 32])),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            inverted,
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = backends::open_path(src.as_ref()).unwrap();
    let t = std::time::Instant::now();
    let r = index
        .index(
            s.as_mut(),
            &decrypt::PassThrough::default(),
            &Default::default(),
        )
        .unwrap();
    eprintln!("{} stored in {:?}", r.stored, t.elapsed());
}
