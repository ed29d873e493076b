//! The pictures in a real browser: Debian's Chromium, headless, draws the
//! SVG of every built-in scenario and of a failing lab, and the mermaid
//! package from the npm registry (loaded from a local file, as a page would)
//! renders each one's Mermaid text. Nothing here downloads anything:
//! scripts/test installs `chromium` with apt and the mermaid package with
//! npm; the tests find it at $HC_TRACE_MERMAID_JS, or at
//! target/browser/package/dist/mermaid.min.js where scripts/test puts it.

mod common;
use common::*;
use hc_core::session::{assemble, Recording};
use hc_render as render;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The mermaid package's browser bundle: required, or the test fails.
fn mermaid_js() -> PathBuf {
    let p = std::env::var_os("HC_TRACE_MERMAID_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/browser/package/dist/mermaid.min.js"));
    assert!(
        p.is_file(),
        "this test needs the mermaid package's dist/mermaid.min.js at {} \
         (scripts/test installs it with npm), or HC_TRACE_MERMAID_JS naming it",
        p.display()
    );
    p
}

/// Every built-in scenario's recording, and the failing lab's.
fn reports() -> Vec<(String, hc_core::report::Report)> {
    let mut names: Vec<String> = hc_core::scenario::names()
        .into_iter()
        .map(str::to_string)
        .collect();
    names.push("lab-wrong".into());
    names
        .into_iter()
        .map(|name| {
            let path = root().join(format!("tests/fixtures/recordings/{name}.json"));
            let text = std::fs::read_to_string(&path).expect("the recording");
            let rec: Recording = serde_json::from_str(&text).expect("a recording");
            let scn = rec.scenario().expect("its scenario parses");
            (name, assemble(&rec, &scn))
        })
        .collect()
}

/// A page that renders each Mermaid text with the mermaid package and
/// loads each SVG file as an image, then writes what happened to each as
/// JSON in `<pre id="result">`.
fn page(
    mermaid: &Path,
    diagrams: &[(String, String, String)],
    svgs: &[(String, PathBuf)],
) -> String {
    let diagrams = serde_json::to_string(diagrams).expect("json");
    let svgs: Vec<(String, String)> = svgs
        .iter()
        .map(|(n, p)| (n.clone(), format!("file://{}", p.display())))
        .collect();
    let svgs = serde_json::to_string(&svgs).expect("json");
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8">
<script src="file://{}"></script></head>
<body><pre id="result">pending</pre><div id="scratch"></div>
<script>
const diagrams = {diagrams};
const svgs = {svgs};
const out = {{}};
function load(name, url) {{
  return new Promise(done => {{
    const img = new Image();
    img.onload = () => done(img.naturalWidth > 0 && img.naturalHeight > 0 ? 'ok' : 'ERROR empty image');
    img.onerror = () => done('ERROR the browser could not draw it');
    img.src = url;
  }}).then(async r => {{
    if (r !== 'ok') return r;
    const text = await (await fetch(url)).text();
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    return doc.getElementsByTagName('parsererror').length ? 'ERROR not well-formed XML' : 'ok';
  }}).catch(e => 'ERROR ' + e);
}}
(async () => {{
  if (typeof mermaid === 'undefined') {{
    document.getElementById('result').textContent = 'RESULT {{"mermaid": "ERROR the mermaid package did not load"}}';
    return;
  }}
  mermaid.initialize({{ startOnLoad: false, securityLevel: 'strict' }});
  let n = 0;
  for (const [name, text, title] of diagrams) {{
    try {{
      await mermaid.parse(text);
      const r = await mermaid.render('d' + (n++), text);
      out['mermaid ' + name] = r.svg.length > 1000 ? 'ok ' + r.svg.length : 'ERROR tiny output';
      out['title ' + name] = r.svg.includes('>hc-trace ' + title + '</text>') ? 'ok' : 'ERROR no title';
    }} catch (e) {{
      out['mermaid ' + name] = 'ERROR ' + (e && e.message ? e.message : String(e)).slice(0, 300);
    }}
  }}
  for (const [name, url] of svgs) out['svg ' + name] = await load(name, url);
  document.getElementById('result').textContent = 'RESULT ' + JSON.stringify(out);
}})();
</script></body></html>"#,
        mermaid.display()
    )
}

/// Opens `page` in headless Chromium and returns what it wrote, by name.
fn in_chromium(page: &Path) -> serde_json::Map<String, serde_json::Value> {
    require_tool("chromium");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--allow-file-access-from-files",
            "--virtual-time-budget=120000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("chromium did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split("RESULT ")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or_else(|| panic!("the page wrote no result:\n{dom}"));
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    match serde_json::from_str(&json) {
        Ok(serde_json::Value::Object(m)) => m,
        other => panic!("not a result: {other:?}\n{json}"),
    }
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs chromium and the mermaid package that scripts/test installs: run scripts/test, or cargo test --features privileged"
)]
fn every_picture_renders_in_a_real_browser() {
    let js = mermaid_js();
    let dir = temp_path("browser");
    std::fs::create_dir_all(&dir).expect("a directory");
    let mut diagrams = Vec::new();
    let mut svgs = Vec::new();
    for (name, r) in reports() {
        let m = render::mermaid::render(&r);
        assert!(m.len() < 50_000, "{name}: {} bytes of Mermaid", m.len());
        diagrams.push((name.clone(), m, r.scenario.clone()));
        let p = dir.join(format!("{name}.svg"));
        std::fs::write(&p, render::svg::render(&r)).expect("write");
        svgs.push((name, p));
    }
    // Negative controls: the harness reports a broken diagram and a broken SVG.
    diagrams.push((
        "broken".into(),
        "sequenceDiagram\n    participant Client\n    Client->>: what\n    Note over: ?\n".into(),
        "broken".into(),
    ));
    let broken = dir.join("broken.svg");
    std::fs::write(
        &broken,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><text>no end",
    )
    .expect("write");
    svgs.push(("broken".into(), broken));
    let html = dir.join("page.html");
    std::fs::write(&html, page(&js, &diagrams, &svgs)).expect("write");

    let got = in_chromium(&html);
    let _ = std::fs::remove_dir_all(&dir);
    let says = |k: &str| {
        got.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("missing")
            .to_string()
    };
    assert!(says("mermaid broken").starts_with("ERROR"), "{got:?}");
    assert!(says("svg broken").starts_with("ERROR"), "{got:?}");
    let mut bad = Vec::new();
    for (name, _, _) in diagrams.iter().filter(|(n, _, _)| n != "broken") {
        for k in [
            format!("mermaid {name}"),
            format!("title {name}"),
            format!("svg {name}"),
        ] {
            if !says(&k).starts_with("ok") {
                bad.push(format!("{k}: {}", says(&k)));
            }
        }
    }
    assert!(bad.is_empty(), "did not render:\n{}", bad.join("\n"));
    assert_eq!(got.len(), 3 * (diagrams.len() - 1) + 2, "{got:?}");
}
