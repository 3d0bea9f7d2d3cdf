use super::*;

fn openid() -> OpenId {
    let config = OpenIdConfig {
        providers: Vec::new(),
        callback_allow_origins: vec!["http://127.0.0.1:3000".into()],
    };
    OpenId::new(&config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn callbacks_only_to_allowed_places() {
    let o = openid();
    let origin = "http://registry:5000";
    for ok in [
        "/",
        "/home?x=1",
        "http://registry:5000/ui",
        "http://127.0.0.1:3000/home",
    ] {
        assert!(o.callback_allowed(ok, origin), "{ok}");
    }
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "http://127.0.0.1:3000@evil.example/",
        "javascript:alert(1)",
        "http://127.0.0.1:30000/",
        "/a\r\nSet-Cookie: x",
        "evil.example",
    ] {
        assert!(!o.callback_allowed(bad, origin), "{bad}");
    }
}

#[test]
fn pkce_s256_matches_rfc7636_example() {
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
