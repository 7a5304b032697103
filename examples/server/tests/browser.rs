//! The agent console and the customer page in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven through WebDriver: every step of the product, with a screenshot
//! of each under `target/screenshots/`; the PDF viewer on a phone (mobile emulation: 390×844,
//! touch, a mobile user agent) and on the console; keyboard use, dialogs and widths down to
//! 320 px with axe-core (`tests/vendor/`, from `vendor.sh`) finding nothing. The screenshots the
//! README shows are written to `docs/`.
//!
//! Without Chromium each test says so loudly on stderr and passes; under `CI=true` it fails
//! instead, since `.ci/run` installs Chromium.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use collab_core::testing::files::{pdf_with_pages, png};
use common::process::{KillOnDrop, ServerProcess};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a phone says it is: Chrome on Android.
const PHONE_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                        Chrome/156.0.0.0 Mobile Safari/537.36";

async fn browser(driver: &str, profile: &Path) -> Client {
    session(driver, profile, (1280, 860), None).await
}

/// A desktop browser window of `width` × `height`.
async fn desktop(driver: &str, profile: &Path, width: u32, height: u32) -> Client {
    session(driver, profile, (width, height), None).await
}

/// A phone: a `width` × `height` screen at twice the density, touch, and a mobile user agent.
async fn phone(driver: &str, profile: &Path, width: u32, height: u32) -> Client {
    let emulation = json!({
        "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
        "userAgent": PHONE_UA,
    });
    session(driver, profile, (width, height), Some(emulation)).await
}

async fn session(
    driver: &str,
    profile: &Path,
    (width, height): (u32, u32),
    mobile: Option<serde_json::Value>,
) -> Client {
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            format!("--window-size={width},{height}"), format!("--user-data-dir={}", profile.display()),
        ]
    });
    if let Some(mobile) = mobile {
        options["mobileEmulation"] = mobile;
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".to_owned(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session")
}

/// Waits until the element matching `css` satisfies `check` on its text.
async fn wait_text(client: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
            && check(&text)
        {
            return text;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "waited too long for {css}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_visible(client: &Client, css: &str) {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waited too long for {css} to show"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let element = client.find(Locator::Css(css)).await.unwrap();
    element.clear().await.unwrap();
    element.send_keys(text).await.unwrap();
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Makes a hidden file input usable and gives it `path`.
async fn choose_file(client: &Client, path: &Path) {
    let input = "document.getElementById('file-input').classList";
    client
        .execute(&format!("{input}.remove('hidden')"), vec![])
        .await
        .unwrap();
    client
        .find(Locator::Css("#file-input"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    client.execute(&format!("{input}.add('hidden')"), vec![]).await.unwrap();
}

/// A server as `cargo run` starts it (dev mode: the development agent, invites by email to the
/// Dev inbox, no SMS sender) and a chromedriver, both on free ports; `None` when Chromium is
/// missing outside CI (said on stderr).
struct Rig {
    dir: tempfile::TempDir,
    server: ServerProcess,
    driver_url: String,
    _driver: KillOnDrop,
}

fn rig() -> Option<Rig> {
    rig_with(|_| {})
}

/// As [`rig`], with `configure` adding to the server's command.
fn rig_with(configure: impl FnOnce(&mut Command)) -> Option<Rig> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let message = "BROWSER TEST SKIPPED: /usr/bin/chromium or /usr/bin/chromedriver is missing \
                       (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}, and CI=true requires it"
        );
        eprintln!("\n*** {message} ***\n");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path().join("data"));
        configure(command);
    });
    let port = free_port();
    let driver = KillOnDrop(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Rig {
        dir,
        server,
        driver_url: format!("http://127.0.0.1:{port}"),
        _driver: driver,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_end_to_end_in_chromium() {
    let Some(rig) = rig() else { return };
    let dir = &rig.dir;
    let base = rig.server.base.clone();
    let driver_url = rig.driver_url.clone();
    let agent = browser(&driver_url, &dir.path().join("agent-profile")).await;
    let customer = browser(&driver_url, &dir.path().join("customer-profile")).await;

    // 1. The agent signs in and creates a room: "Collaboration Room".
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;
    wait_visible(&agent, "#new-room").await;
    click(&agent, "#new-room").await;
    wait_text(&agent, "#room-name", |t| t == "Collaboration Room").await;
    shot(&agent, "01-agent-new-room").await;

    // 2. The agent invites Ada Lovelace by email: the room takes her name.
    click(&agent, "#invite-button").await;
    click(&agent, "#channel-email").await;
    type_into(&agent, "#first-name", "Ada").await;
    type_into(&agent, "#last-name", "Lovelace").await;
    type_into(&agent, "#identifier", "ada@example.com").await;
    click(&agent, "#invite-send").await;
    wait_text(&agent, "#invite-message", |t| t.contains("on its way")).await;
    click(&agent, "#invite-cancel").await;
    wait_text(&agent, "#room-name", |t| t == "Ada Lovelace").await;
    wait_text(&agent, "#customer-info", |t| t.contains("ada@example.com")).await;
    shot(&agent, "02-agent-invited").await;

    // 3. The customer opens the link from the dev inbox in a second browser.
    wait_visible(&agent, "#inbox-button").await;
    let started = Instant::now();
    let link = loop {
        click(&agent, "#inbox-button").await;
        // The list may be redrawn between finding a link and reading it (an earlier click's
        // answer arriving late): a stale link is read again on the next round.
        if let Ok(a) = agent.find(Locator::Css("#inbox-list .inbox-link")).await
            && let Ok(Some(href)) = a.attr("href").await
        {
            break href;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no email in the dev inbox");
        click(&agent, "#inbox-close").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    shot(&agent, "03-agent-dev-inbox").await;
    click(&agent, "#inbox-close").await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#room-name", |t| t == "Ada Lovelace").await;
    assert!(
        customer.current_url().await.unwrap().path() == "/room",
        "the token left the address bar"
    );
    shot(&customer, "04-customer-joined").await;

    // 4. Messages go both ways, live.
    type_into(&agent, "#chat-input", "Hello Ada, how can I help?").await;
    click(&agent, "#send").await;
    wait_text(&customer, "#content", |t| t.contains("Hello Ada, how can I help?")).await;
    type_into(&customer, "#chat-input", "I have a photo of the damage.").await;
    click(&customer, "#send").await;
    wait_text(&agent, "#content", |t| t.contains("I have a photo of the damage.")).await;
    shot(&customer, "05-customer-chat").await;

    // 5. A file over the server's limit is refused on the phone, before a byte is sent, in
    // words that say the limit (the server's 413 can reach a browser as a dropped connection).
    let video = dir.path().join("video.mp4");
    std::fs::File::create(&video)
        .unwrap()
        .set_len(collab_core::RoomsConfig::DEFAULT_MAX_DOCUMENT_BYTES + 1)
        .unwrap();
    choose_file(&customer, &video).await;
    wait_text(&customer, "#upload-message", |t| t.contains("the limit is 25 MiB")).await;
    // The customer uploads an image; the agent sees it inline and enlarges it.
    let photo = dir.path().join("damage.png");
    std::fs::write(&photo, png(64, 48)).unwrap();
    choose_file(&customer, &photo).await;
    wait_text(&customer, "#upload-message", |t| t.contains("was shared")).await;
    wait_visible(&agent, "#content img.thumb").await;
    click(&agent, "#content img.thumb").await;
    wait_visible(&agent, "#lightbox").await;
    // Inline, the server's thumbnail (loaded, not the placeholder); the popup, the original.
    let sources = wait_js(
        &agent,
        "the thumbnail loaded",
        "const t = document.querySelector('#content img.thumb');
         return [t.getAttribute('src'), t.complete && t.naturalWidth,
                 document.getElementById('lightbox-image').getAttribute('src')];",
        vec![],
        |v| v[1].as_u64().is_some_and(|w| w > 0),
    )
    .await;
    let (inline, enlarged) = (sources[0].as_str().unwrap(), sources[2].as_str().unwrap());
    assert_eq!(inline, format!("{enlarged}/thumbnail"), "{sources}");
    assert!(enlarged.contains("/documents/"), "{sources}");
    shot(&agent, "06-agent-image-enlarged").await;
    click(&agent, "#lightbox-close").await;

    // 6. The agent shares a 3-page PDF; the customer reads it, jumps to page 3, presses Done.
    let contract = dir.path().join("contract.pdf");
    std::fs::write(&contract, pdf_with_pages(3)).unwrap();
    click(&agent, "#share-button").await;
    choose_file(&agent, &contract).await;
    wait_text(&agent, "#upload-message", |t| t.contains("was shared")).await;
    click(&agent, "#share-close").await;
    wait_text(&customer, "#content .pdf-link", |t| t.contains("3 pages")).await;
    click(&customer, "#content .pdf-link").await;
    wait_visible(&customer, "#pdf-viewer").await;
    wait_drawn(&customer, 1).await;
    type_into(&customer, "#pdf-page", "3").await;
    click(&customer, "#pdf-go").await;
    let page = wait_drawn(&customer, 3).await;
    assert!(page.visible, "page 3 is not in view after the jump");
    shot(&customer, "07-customer-pdf-page-3").await;
    click(&customer, "#pdf-done").await;
    assert!(
        !customer
            .find(Locator::Css("#pdf-viewer"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    shot(&customer, "08-customer-room").await;

    // 7. An SMS re-invite without an activated sender shows the error.
    click(&agent, "#invite-button").await;
    click(&agent, "#channel-sms").await;
    wait_text(&agent, "#invite-message", |t| t.contains("SMS is not activated")).await;
    type_into(&agent, "#identifier", "+447911123456").await;
    click(&agent, "#invite-send").await;
    // The server's own refusal, not only the console's warning.
    wait_text(&agent, "#invite-message", |t| t.contains("configure a sender number")).await;
    shot(&agent, "09-agent-sms-not-activated").await;

    // 8. Get Link shows a link that works.
    click(&agent, "#channel-link").await;
    click(&agent, "#invite-send").await;
    wait_visible(&agent, "#link-box").await;
    let copied = agent
        .find(Locator::Css("#link-output"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(copied.starts_with(&format!("{base}/join/")), "{copied}");
    shot(&agent, "10-agent-get-link").await;
    let third = browser(&driver_url, &dir.path().join("third-profile")).await;
    third.goto(&copied).await.unwrap();
    wait_text(&third, "#room-name", |t| t == "Ada Lovelace").await;
    wait_text(&third, "#content", |t| t.contains("I have a photo of the damage.")).await;

    // 9. The customer page on a phone-sized screen: everything fits its width.
    customer.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow = customer
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "the page is wider than the phone: {overflow}"
    );
    shot(&customer, "11-customer-phone").await;

    for client in [agent, customer, third] {
        client.close().await.unwrap();
    }
}

/// axe-core, vendored by vendor.sh for the tests only.
const AXE: &str = include_str!("vendor/axe.min.js");

/// Runs axe-core on the page as it is now (open dialogs included): no violation at any impact.
async fn axe(client: &Client, what: &str) {
    let loaded = client
        .execute("return typeof axe !== 'undefined'", vec![])
        .await
        .unwrap();
    if loaded != json!(true) {
        client.execute(AXE, vec![]).await.unwrap();
    }
    let violations = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then(
               (r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))),
               (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(violations, json!([]), "axe-core on {what}: {violations:#}");
}

/// Runs `script` with `args` until `check` accepts its result; fails after 30 s.
async fn wait_js(
    client: &Client,
    what: &str,
    script: &str,
    args: Vec<serde_json::Value>,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let value = client.execute(script, args.clone()).await.unwrap();
        if check(&value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited too long for {what}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PDF viewer's page `arguments[0]` once drawn: its dark pixels, and whether it is in view.
const PAGE_PIXELS: &str = r##"
const box = document.querySelector(`#pdf-scroll .pdf-page[data-page="${arguments[0]}"]`);
if (!box || !box.classList.contains("drawn")) {
  const message = document.getElementById("pdf-message");
  const states = [...document.querySelectorAll("#pdf-scroll .pdf-page[data-state]")].map((e) => `${e.dataset.page}:${e.dataset.state}`);
  return { waiting: message ? message.textContent : "no viewer", states: states.join(" ") };
}
const canvas = box.querySelector("canvas");
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let dark = 0;
for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] < 384) dark++;
const view = document.getElementById("pdf-scroll").getBoundingClientRect();
const page = box.getBoundingClientRect();
return { dark, visible: page.top < view.bottom - 20 && page.bottom > view.top + 20 };
"##;

#[derive(Debug)]
struct DrawnPage {
    dark: u64,
    visible: bool,
}

async fn wait_drawn(client: &Client, page: u32) -> DrawnPage {
    let value = wait_js(
        client,
        &format!("page {page} drawn"),
        PAGE_PIXELS,
        vec![json!(page)],
        |v| v["dark"].is_u64(),
    )
    .await;
    DrawnPage {
        dark: value["dark"].as_u64().unwrap(),
        visible: value["visible"].as_bool().unwrap(),
    }
}

/// That the customer page offers no way to write (message box, send, share), in `room`.
async fn assert_writing_disabled(customer: &Client, room: &str) {
    for control in ["#chat-input", "#send", "#upload-button"] {
        let disabled = js(
            customer,
            &format!("return document.querySelector('{control}').disabled"),
        )
        .await;
        assert_eq!(disabled, true, "{control} is still enabled in {room}");
    }
}

/// Accepts the browser's own confirmation dialog, once it shows.
async fn accept_confirmation(client: &Client) {
    let started = Instant::now();
    loop {
        match client.accept_alert().await {
            Ok(()) => return,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no confirmation came: {e}"),
        }
    }
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Presses `key` on the focused element.
async fn press(client: &Client, key: &str) {
    client.active_element().await.unwrap().send_keys(key).await.unwrap();
}

/// Focuses the element matching `css` and presses Enter: opening by keyboard.
async fn enter_on(client: &Client, css: &str) {
    let focused = client
        .execute(
            "const e = document.querySelector(arguments[0]); if (e) e.focus(); return e === document.activeElement;",
            vec![json!(css)],
        )
        .await
        .unwrap();
    assert_eq!(focused, json!(true), "{css} cannot take the focus");
    press(client, ENTER).await;
}

async fn focused_id(client: &Client) -> String {
    js(
        client,
        "return document.activeElement && (document.activeElement.id || document.activeElement.className)",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Escape closes the open dialog `css`, and the focus goes back to `opener`.
async fn escape_closes(client: &Client, css: &str, opener: &str) {
    press(client, ESCAPE).await;
    let shown = is_shown(client, css).await;
    assert!(!shown, "Escape left {css} open");
    let back = js(
        client,
        &format!("return document.activeElement === document.querySelector('{opener}')"),
    )
    .await;
    assert_eq!(
        back,
        json!(true),
        "the focus did not go back to {opener} but to {}",
        focused_id(client).await
    );
}

/// Nothing of the PDF viewer's toolbar is cut off, down to "of N" and Done.
async fn pdf_toolbar_fits(client: &Client) {
    let clipped = js(
        client,
        "return ['pdf-count', 'pdf-go', 'pdf-zoom-in', 'pdf-done'].filter((id) => {
           const r = document.getElementById(id).getBoundingClientRect();
           return r.right > window.innerWidth || r.left < 0 || r.width === 0; })",
    )
    .await;
    assert_eq!(clipped, json!([]), "the PDF toolbar clips these");
}

/// The first thumbnail enlarges by keyboard; axe-core on the lightbox; Escape closes it.
async fn lightbox_by_keyboard(client: &Client, what: &str) {
    enter_on(client, "#content .thumb-button").await;
    wait_visible(client, "#lightbox-close").await;
    axe(client, what).await;
    escape_closes(client, "#lightbox", "#content .thumb-button").await;
}

/// The development agent signs in on the console's sign-in page.
async fn sign_in(client: &Client) {
    wait_visible(client, "#signin").await;
    type_into(client, "#agent", "agent@example.com").await;
    type_into(client, "#password", "dev").await;
    click(client, "#signin-button").await;
}

/// Whether the element matching `css` is displayed.
async fn is_shown(client: &Client, css: &str) -> bool {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap()
}

/// Saves a screenshot under docs/, for the README and for looking at.
async fn doc_shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    std::fs::write(path, png).unwrap();
}

/// The development agent signs in through the HTTP API; its cookie.
/// Opens a new room in the console and invites Ada Lovelace to it by email, which the console
/// answers by naming the room she has: the new room's `location.hash`.
async fn invite_ada_in_a_new_room(agent: &Client) -> serde_json::Value {
    click(agent, "#new-room").await;
    wait_text(agent, "#room-name", |t| t == "Collaboration Room").await;
    let room = js(agent, "return location.hash").await;
    click(agent, "#invite-button").await;
    type_into(agent, "#first-name", "Ada").await;
    type_into(agent, "#last-name", "Lovelace").await;
    type_into(agent, "#identifier", "ada@example.com").await;
    click(agent, "#invite-send").await;
    wait_text(agent, "#invite-message", |t| t.contains("already has a room")).await;
    room
}

async fn api_agent(server: &ServerProcess) -> String {
    server.http().sign_in("agent@example.com", "dev").await
}

/// A new room with customer Ada Lovelace invited by link: the room and the link.
async fn api_room(server: &ServerProcess, agent: &str) -> (String, String) {
    let http = server.http();
    let room = http.call("POST", "/api/rooms", Some(agent), None).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A link comes after a first invite by SMS or email has gone out (to the Dev inbox).
    let email =
        json!({ "channel": "email", "first_name": "Ada", "last_name": "Lovelace", "identifier": "ada@example.com" });
    let reply = http
        .call("POST", &format!("/api/rooms/{room}/invites"), Some(agent), Some(email))
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
    let link = api_link(server, agent, &room).await;
    (room, link)
}

/// A new invite link to `room`, once its first invite has gone out.
async fn api_link(server: &ServerProcess, agent: &str, room: &str) -> String {
    let started = Instant::now();
    loop {
        let reply = server
            .http()
            .call(
                "POST",
                &format!("/api/rooms/{room}/invites"),
                Some(agent),
                Some(json!({ "channel": "link" })),
            )
            .await;
        if let Some(link) = reply.json()["link"].as_str() {
            return link.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no link: {}", reply.json());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn api_upload(server: &ServerProcess, agent: &str, room: &str, name: &str, bytes: Vec<u8>) {
    let path = format!("/api/rooms/{room}/documents?name={name}");
    let headers = [("cookie", agent), ("content-type", "application/octet-stream")];
    let reply = server.http().send("POST", &path, &headers, bytes).await.unwrap();
    assert!(reply.status.is_success(), "{name}: {:?}", reply.json());
}

async fn api_message(server: &ServerProcess, agent: &str, room: &str, text: &str) {
    let body = json!({ "text": text });
    let reply = server
        .http()
        .call("POST", &format!("/api/rooms/{room}/messages"), Some(agent), Some(body))
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
}

/// A PDF of `pages` pages, each with its number in large type and `bulk` bytes of drawing:
/// many small squares, so that a page costs something to parse and draw.
fn heavy_pdf(pages: usize, bulk: usize) -> Vec<u8> {
    collab_core::testing::files::pdf_with_page_contents(pages, |_| {
        let mut content = "\n0.2 0.4 0.8 rg\n".to_owned();
        let mut square = 0usize;
        while content.len() < bulk {
            content.push_str(&format!(
                "{} {} 3 3 re f\n",
                40 + (square * 7) % 530,
                60 + (square / 76) % 540
            ));
            square += 1;
        }
        content
    })
}

/// A whole RGB PNG of `width` × `height` pixels that shows something: a sky over a field, with
/// a sun (the test files' `png` is black, and only a header for large sizes).
fn picture(width: u32, height: u32) -> Vec<u8> {
    use collab_core::testing::files::png_chunk;
    let mut raw = Vec::with_capacity(((3 * width + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            let (dx, dy) = (
                i64::from(x) - i64::from(width) * 3 / 4,
                i64::from(y) - i64::from(height) / 4,
            );
            let pixel = if dx * dx + dy * dy < i64::from(height / 8).pow(2) {
                [250, 200, 40]
            } else if y < height * 3 / 5 {
                [90, (140 + 80 * y / height) as u8, 230]
            } else {
                [60, (150 - 60 * (y - height * 3 / 5) / height) as u8, 50]
            };
            raw.extend_from_slice(&pixel);
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Clicks the document link in the content area whose text starts with `name`.
async fn open_document(client: &Client, name: &str) {
    for link in client.find_all(Locator::Css("#content .pdf-link")).await.unwrap() {
        if link.text().await.unwrap().starts_with(name) {
            link.click().await.unwrap();
            return;
        }
    }
    panic!("no link to {name}");
}

/// Reads a 12-page PDF in the viewer: page 1, a jump to page 9 with Enter (drawn, not blank,
/// in view), a page out of range refused and corrected, a zoom step, Done back to the room at
/// the same scroll position. `shot_name` is the screenshot at page 9 under docs/.
async fn read_contract(client: &Client, shot_name: &str) {
    let before = js(client, "return document.getElementById('content').scrollTop").await;
    open_document(client, "contract.pdf").await;
    wait_visible(client, "#pdf-viewer").await;
    let first = wait_drawn(client, 1).await;
    assert!(first.visible && first.dark > 500, "page 1: {first:?}");
    type_into(client, "#pdf-page", "9").await;
    press(client, ENTER).await;
    let ninth = wait_drawn(client, 9).await;
    assert!(ninth.visible, "page 9 is not in view after the jump");
    assert!(ninth.dark > 500, "page 9 is blank: {ninth:?}");
    wait_js(
        client,
        "the page counter at 9",
        "return document.getElementById('pdf-page').value",
        vec![],
        |v| v == "9",
    )
    .await;
    doc_shot(client, shot_name).await;
    pdf_toolbar_fits(client).await;
    assert_eq!(
        js(client, "return document.getElementById('pdf-count').textContent").await,
        "of 12"
    );

    type_into(client, "#pdf-page", "99").await;
    press(client, ENTER).await;
    wait_text(client, "#pdf-message", |t| t.contains("from 1 to 12")).await;
    assert_eq!(
        js(client, "return document.getElementById('pdf-page').value").await,
        "12"
    );
    assert!(wait_drawn(client, 9).await.visible, "a refused jump moved the viewer");

    click(client, "#pdf-zoom-in").await;
    let zoomed = wait_drawn(client, 9).await;
    assert!(
        zoomed.visible && zoomed.dark > 500,
        "page 9 after zooming in: {zoomed:?}"
    );

    click(client, "#pdf-done").await;
    let shown = is_shown(client, "#pdf-viewer").await;
    assert!(!shown, "Done left the viewer open");
    let after = js(client, "return document.getElementById('content').scrollTop").await;
    assert_eq!(before, after, "Done did not return to the same place in the room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pdf_viewer_on_a_phone_and_on_the_console() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_upload(&rig.server, &agent_cookie, &room, "contract.pdf", pdf_with_pages(12)).await;
    api_upload(&rig.server, &agent_cookie, &room, "long.pdf", pdf_with_pages(300)).await;
    let heavy = heavy_pdf(50, 100_000);
    let heavy_size = heavy.len();
    api_upload(&rig.server, &agent_cookie, &room, "heavy.pdf", heavy).await;

    // The agent, at desktop size: the first PDF opened loads PDF.js, timed for BENCHMARKS.md.
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1366, 900).await;
    agent.goto(&format!("{base}/#room={room}")).await.unwrap();
    sign_in(&agent).await;
    wait_text(&agent, "#content", |t| t.contains("heavy.pdf")).await;
    let elapsed = agent
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const link = [...document.querySelectorAll('#content .pdf-link')]
               .find((a) => a.textContent.startsWith('heavy.pdf'));
             const started = performance.now();
             link.click();
             const check = () => document.querySelector('#pdf-scroll .pdf-page[data-page=\"1\"].drawn')
               ? done(performance.now() - started) : requestAnimationFrame(check);
             check();",
            vec![],
        )
        .await
        .unwrap();
    eprintln!(
        "BENCH open a {:.1} MB, 50-page PDF to page 1 drawn (PDF.js not yet loaded): {:.0} ms",
        heavy_size as f64 / 1e6,
        elapsed.as_f64().unwrap()
    );
    click(&agent, "#pdf-done").await;
    read_contract(&agent, "agent-console-pdf-viewer.png").await;

    // The customer, on a phone.
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("contract.pdf")).await;
    read_contract(&customer, "customer-pdf-viewer.png").await;

    // 300 pages: page 1 at once, and never more than a few canvases, wherever the reader goes.
    open_document(&customer, "long.pdf").await;
    wait_drawn(&customer, 1).await;
    assert_eq!(
        js(
            &customer,
            "return document.querySelectorAll('#pdf-scroll .pdf-page').length"
        )
        .await,
        300
    );
    js(
        &customer,
        "window.mostCanvases = 0;
         new MutationObserver(() => { window.mostCanvases = Math.max(window.mostCanvases,
           document.querySelectorAll('#pdf-scroll canvas').length); })
           .observe(document.getElementById('pdf-scroll'), { childList: true, subtree: true });",
    )
    .await;
    for step in 1..=10 {
        js(
            &customer,
            &format!("const s = document.getElementById('pdf-scroll'); s.scrollTop = (s.scrollHeight - s.clientHeight) * {step} / 10;"),
        )
        .await;
        let page = wait_js(
            &customer,
            "the page counter to follow the scrolling",
            "return Number(document.getElementById('pdf-page').value)",
            vec![],
            // Past the previous step's page: the counter read after this scroll, not before.
            |v| v.as_u64().unwrap_or(0) >= 30 * step - 5,
        )
        .await;
        wait_drawn(&customer, page.as_u64().unwrap() as u32).await;
    }
    let most = js(&customer, "return window.mostCanvases").await.as_u64().unwrap();
    assert!((1..=8).contains(&most), "the viewer held {most} canvases at once");
    click(&customer, "#pdf-done").await;

    for client in [agent, customer] {
        client.close().await.unwrap();
    }
}

/// Where the element `arguments[0]` is against the content area: its margins inside it
/// (negative when cut off) and its height.
const IN_CONTENT: &str = "const e = document.querySelector(arguments[0]); if (!e) return null;
  const r = e.getBoundingClientRect(); const v = document.getElementById('content').getBoundingClientRect();
  return { top: r.top - v.top, bottom: v.bottom - r.bottom, height: r.height };";

const PICTURE_LOADED: &str =
    "const img = document.querySelector('#content img.thumb'); return !!img && img.complete && img.naturalWidth > 0";

/// No sideways scrolling, and the Send button whole on the screen.
async fn fits_the_width(client: &Client, width: u32) {
    let overflow = js(
        client,
        "return document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(overflow.as_i64().unwrap_or(1) <= 0, "wider than {width} px: {overflow}");
    let send = js(
        client,
        "const r = document.getElementById('send').getBoundingClientRect();
         return r.left >= 0 && r.right <= window.innerWidth && r.width > 0",
    )
    .await;
    assert_eq!(send, json!(true), "the Send button is cut off at {width} px");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_by_keyboard_at_every_width_with_no_axe_violation() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    for i in 1..=25 {
        let text = format!("Message {i}: the details of the claim, one line after another.");
        api_message(&rig.server, &agent_cookie, &room, &text).await;
    }
    api_upload(&rig.server, &agent_cookie, &room, "contract.pdf", pdf_with_pages(3)).await;

    // The customer on a phone 390 px wide; a photo arrives while they watch.
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("contract.pdf")).await;
    api_upload(&rig.server, &agent_cookie, &room, "damage.png", picture(800, 600)).await;
    // The box is checked as soon as the item is there, loaded or not: its height comes from
    // the dimensions the API reported, and the scroll to the bottom shows all of it.
    let photo = wait_js(
        &customer,
        "the photo",
        IN_CONTENT,
        vec![json!("#content img.thumb")],
        |v| !v.is_null(),
    )
    .await;
    assert!(photo["height"].as_f64().unwrap() > 100.0, "no box reserved: {photo}");
    assert!(
        photo["top"].as_f64().unwrap() >= -1.0 && photo["bottom"].as_f64().unwrap() >= -1.0,
        "the newest photo is cut off: {photo}"
    );
    wait_text(&customer, "#content .doc-name", |t| t == "damage.png").await;
    fits_the_width(&customer, 390).await;
    axe(&customer, "the customer page at 390 px").await;
    wait_js(&customer, "the photo loaded", PICTURE_LOADED, vec![], |v| v == true).await;
    doc_shot(&customer, "customer-390.png").await;

    // By keyboard: the photo enlarges, the PDF opens; Escape closes each and gives the focus back.
    lightbox_by_keyboard(&customer, "the customer's lightbox").await;
    enter_on(&customer, "#content .pdf-link").await;
    wait_drawn(&customer, 1).await;
    axe(&customer, "the customer's PDF viewer").await;
    escape_closes(&customer, "#pdf-viewer", "#content .pdf-link").await;

    // 320 px wide, from another link: everything still fits.
    let small = phone(&rig.driver_url, &rig.dir.path().join("small"), 320, 640).await;
    small
        .goto(&api_link(&rig.server, &agent_cookie, &room).await)
        .await
        .unwrap();
    wait_text(&small, "#content", |t| t.contains("damage.png")).await;
    fits_the_width(&small, 320).await;
    axe(&small, "the customer page at 320 px").await;
    doc_shot(&small, "customer-320.png").await;
    enter_on(&small, "#content .pdf-link").await;
    wait_drawn(&small, 1).await;
    shot(&small, "customer-320-pdf").await;
    pdf_toolbar_fits(&small).await;

    // The agent at 1366 px: the sign-in page, then a room opened by keyboard.
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1366, 900).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    wait_visible(&agent, "#signin").await;
    axe(&agent, "the sign-in page").await;
    sign_in(&agent).await;
    let room_button = format!(".room-button[data-room=\"{room}\"]");
    wait_visible(&agent, &room_button).await;
    enter_on(&agent, &room_button).await;
    wait_text(&agent, "#room-name", |t| t == "Ada Lovelace").await;
    wait_text(&agent, "#content", |t| t.contains("damage.png")).await;
    // Two links opened: one notice that the customer joined.
    let joined = js(
        &agent,
        "return [...document.querySelectorAll('#content .item.system')]
           .filter((e) => e.textContent === 'The customer joined').length",
    )
    .await;
    assert_eq!(joined, json!(1), "the join notices are not folded");
    axe(&agent, "the console with a room").await;
    wait_js(&agent, "the photo loaded", PICTURE_LOADED, vec![], |v| v == true).await;
    doc_shot(&agent, "agent-console.png").await;
    lightbox_by_keyboard(&agent, "the console's lightbox").await;

    // Links and sessions by keyboard: two phones joined; revoking the first leaves one.
    enter_on(&agent, "#access summary").await;
    let sessions = "return document.querySelectorAll('#access-sessions .access-row').length";
    wait_js(&agent, "two sessions listed", sessions, vec![], |v| v == 2).await;
    axe(&agent, "the console's links and sessions").await;
    enter_on(&agent, "#access-sessions .access-row button").await;
    wait_text(&agent, "#access-message", |t| t.starts_with("Session revoked")).await;
    wait_js(&agent, "one session left", sessions, vec![], |v| v == 1).await;
    enter_on(&agent, "#access summary").await;

    // Each dialog: axe with it open, Escape, the focus back on its button.
    click(&agent, "#invite-button").await;
    wait_text(&agent, "#invite-title", |t| t == "Re Invite").await;
    let pressed = js(
        &agent,
        "return [...document.querySelectorAll('.tabs [aria-pressed=true]')].map((b) => b.id)",
    )
    .await;
    assert_eq!(pressed, json!(["channel-email"]));
    axe(&agent, "the invite dialog").await;
    // Tab and Shift+Tab go round the dialog's controls, never behind it.
    for key in ["\u{E004}", "\u{E008}\u{E004}"] {
        for _ in 0..12 {
            press(&agent, key).await;
            let inside = js(
                &agent,
                "return document.getElementById('invite-frame').contains(document.activeElement)",
            )
            .await;
            assert_eq!(
                inside,
                json!(true),
                "the focus left the invite dialog: {}",
                focused_id(&agent).await
            );
        }
    }
    escape_closes(&agent, "#invite-frame", "#invite-button").await;
    click(&agent, "#share-button").await;
    wait_visible(&agent, "#choose-file").await;
    axe(&agent, "the Share Docs dialog").await;
    escape_closes(&agent, "#share-frame", "#share-button").await;
    wait_visible(&agent, "#inbox-button").await;
    click(&agent, "#inbox-button").await;
    wait_text(&agent, "#inbox-list .inbox-text", |t| !t.is_empty()).await;
    axe(&agent, "the Dev inbox").await;
    escape_closes(&agent, "#inbox", "#inbox-button").await;

    // A first invite turns the dialog into a Re Invite at once.
    click(&agent, "#new-room").await;
    wait_text(&agent, "#room-name", |t| t == "Collaboration Room").await;
    click(&agent, "#invite-button").await;
    wait_text(&agent, "#invite-title", |t| t == "Invite the customer").await;
    type_into(&agent, "#first-name", "Grace").await;
    type_into(&agent, "#last-name", "Hopper").await;
    type_into(&agent, "#identifier", "grace@example.com").await;
    click(&agent, "#invite-send").await;
    wait_text(&agent, "#invite-message", |t| t.contains("on its way")).await;
    wait_text(&agent, "#invite-title", |t| t == "Re Invite").await;
    press(&agent, ESCAPE).await;

    // A deep link opens its room when the address changes, not only on a full load.
    js(&agent, &format!("location.hash = 'room={room}'")).await;
    wait_text(&agent, "#room-name", |t| t == "Ada Lovelace").await;

    // Below 700 px the room list folds behind a button, New room included.
    agent.set_window_size(600, 800).await.unwrap();
    wait_visible(&agent, "#rooms-toggle").await;
    let hidden = !is_shown(&agent, "#new-room").await;
    assert!(hidden, "the room list covers a narrow console");
    click(&agent, "#rooms-toggle").await;
    wait_visible(&agent, "#new-room").await;
    axe(&agent, "the console at 600 px, room list open").await;
    shot(&agent, "agent-console-600").await;

    for client in [agent, customer, small] {
        client.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_inbox_button_shows_only_in_dev_mode() {
    // Email over SMTP: no development notifier, so no Dev inbox (nothing is sent here).
    let Some(rig) = rig_with(|command| {
        command
            .env("COLLAB_SMTP_HOST", "127.0.0.1")
            .env("COLLAB_EMAIL_FROM", "collab@example.com");
    }) else {
        return;
    };
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1366, 900).await;
    agent.goto(&format!("{}/", rig.server.base)).await.unwrap();
    sign_in(&agent).await;
    wait_visible(&agent, "#new-room").await;
    // Once the console has asked whether the inbox is there, and heard no, the button stays hidden.
    wait_js(
        &agent,
        "the console's question about the inbox",
        "return performance.getEntriesByType('resource').some((e) => e.name.endsWith('/api/dev/inbox') && e.responseEnd > 0)",
        vec![],
        |v| v == true,
    )
    .await;
    assert!(
        !is_shown(&agent, "#inbox-button").await,
        "a Dev inbox button without a Dev inbox"
    );
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_room_stays_readable_for_the_customer_on_a_phone() {
    let Some(rig) = rig() else { return };
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &room, "Your contract is signed.").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("Your contract is signed.")).await;

    let reply = rig
        .server
        .http()
        .call("POST", &format!("/api/rooms/{room}/close"), Some(&agent_cookie), None)
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.json());
    // The page hears the room close: it says so and stops offering to write, and the history stays.
    wait_text(&customer, "#readonly-notice", |t| t.contains("closed")).await;
    assert_writing_disabled(&customer, "a closed room").await;
    // A fresh load of the page shows the same: the customer is not locked out of the history.
    customer.refresh().await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("Your contract is signed.")).await;
    wait_text(&customer, "#readonly-notice", |t| t.contains("closed")).await;
    axe(&customer, "the customer page of a closed room").await;
    shot(&customer, "customer-closed-room").await;
    customer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_document_opens_as_text_in_a_new_tab() {
    let Some(rig) = rig() else { return };
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    let notes = b"Meeting notes\n<b>shown as written, never as markup</b>\n".to_vec();
    api_upload(&rig.server, &agent_cookie, &room, "notes.txt", notes).await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("notes.txt")).await;
    let room_tab = customer.window().await.unwrap();
    click(&customer, "#content .doc-link").await;
    let started = Instant::now();
    let tab = loop {
        let windows = customer.windows().await.unwrap();
        if let Some(tab) = windows.into_iter().find(|w| *w != room_tab) {
            break tab;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the text opened in no new tab"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    customer.switch_to_window(tab).await.unwrap();
    // The tab shows the text itself: the markup in it is text, not a bold element.
    wait_text(&customer, "body", |t| {
        t.contains("<b>shown as written, never as markup</b>")
    })
    .await;
    let bold = js(&customer, "return document.querySelectorAll('b').length").await;
    assert_eq!(bold, 0, "the text was rendered as a page");
    customer.close().await.unwrap();
}

/// The customer page of a tenant whose language is Hebrew, on a phone: `dir="rtl"`, its words
/// from he.json (system lines included), the layout mirrored (the agent's message and the chat
/// bar's first control on the right, the customer's own message on the left), axe-core clean.
/// The screenshot, `customer-he.png`, is for a person to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_page_in_hebrew_is_laid_out_right_to_left() {
    let Some(rig) = rig_with(|command| {
        command.args(["--tenant-locales", "example=he"]);
    }) else {
        return;
    };
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &room, "שלום עדה, במה אפשר לעזור?").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("במה אפשר לעזור")).await;
    let page = wait_js(
        &customer,
        "the page in Hebrew",
        "return { dir: document.dir, lang: document.documentElement.lang,
                  placeholder: document.getElementById('chat-input').placeholder,
                  share: document.getElementById('upload-button').textContent,
                  status: document.getElementById('room-status').textContent,
                  content: document.getElementById('content').innerText };",
        vec![],
        |v| v["dir"] == "rtl" && v["status"] != "",
    )
    .await;
    assert_eq!(page["lang"], "he", "{page}");
    assert_eq!(page["placeholder"], "הקלידו הודעה", "{page}");
    assert_eq!(page["share"], "שיתוף קובץ", "{page}");
    assert_eq!(page["status"], "פעיל", "{page}");
    let content = page["content"].as_str().unwrap();
    assert!(
        content.contains("הוזמן בדוא״ל"),
        "the invite's line from he.json: {content}"
    );
    assert!(!content.contains("Invited by"), "the server's English line: {content}");

    type_into(&customer, "#chat-input", "תודה!").await;
    click(&customer, "#send").await;
    wait_text(&customer, "#content .item.mine", |t| t.contains("תודה!")).await;
    let boxes = js(
        &customer,
        "const box = (css) => { const b = document.querySelector(css).getBoundingClientRect();
                                return { left: b.left, right: b.right }; };
         // Where the words are, not their box (which a column stretches).
         const words = (css) => { const range = document.createRange();
                                  range.selectNodeContents(document.querySelector(css));
                                  const b = range.getBoundingClientRect(); return { left: b.left, right: b.right }; };
         return { width: document.documentElement.clientWidth,
                  agent: words('#content .item:not(.mine):not(.system) .text'), mine: box('#content .item.mine'),
                  share: box('#upload-button'), send: box('#send'),
                  time: document.querySelector('#content .item time').textContent };",
    )
    .await;
    let x = |item: &str, edge: &str| boxes[item][edge].as_f64().unwrap();
    let width = boxes["width"].as_f64().unwrap();
    assert!(
        x("agent", "right") > width - 40.0 && x("agent", "left") > width / 3.0,
        "the agent's message is not on the right: {boxes}"
    );
    assert!(
        x("mine", "left") < 40.0 && x("mine", "right") < width * 2.0 / 3.0,
        "the customer's message is not on the left: {boxes}"
    );
    assert!(
        x("share", "left") > x("send", "right"),
        "the chat bar is not mirrored: {boxes}"
    );
    assert!(!boxes["time"].as_str().unwrap().is_empty(), "no time: {boxes}");
    axe(&customer, "the customer page in Hebrew").await;
    shot(&customer, "customer-he").await;
    customer.close().await.unwrap();
}

/// A reverse proxy in front of the server, as a host runs one, that can be switched to answer
/// every request with its own 502 and drop the connections it holds, as during a deploy.
struct Proxy {
    port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(backend: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = tokio::sync::watch::channel(true);
        let switch = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = switch.subscribe();
                tokio::spawn(async move {
                    if !*state.borrow_and_update() {
                        let mut head = [0u8; 4096];
                        let _ = tokio::io::AsyncReadExt::read(&mut client, &mut head).await;
                        let answer = "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\n\
                                      content-length: 11\r\nconnection: close\r\n\r\nBad Gateway";
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut client, answer.as_bytes()).await;
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    // Until the switch goes down: then the connection is dropped mid-stream.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = state.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_s_phone_rides_out_a_proxy_s_502s_and_sends_what_was_kept() {
    let server_port = free_port();
    let proxy = Proxy::start(server_port).await;
    let Some(rig) = rig_with(|command| {
        command
            .args(["--addr", &format!("127.0.0.1:{server_port}")])
            .args(["--base-url", &format!("http://127.0.0.1:{}", proxy.port)]);
    }) else {
        return;
    };
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    assert!(link.contains(&proxy.port.to_string()), "{link}");
    api_message(&rig.server, &agent_cookie, &room, "Here is your room.").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("Here is your room.")).await;

    // The deploy: the live stream is cut and every request meets the proxy's 502 page.
    proxy.set_up(false);
    wait_text(&customer, "#connection", |t| t.contains("Reconnecting")).await;
    type_into(&customer, "#chat-input", "Are you still there?").await;
    click(&customer, "#send").await;
    wait_text(&customer, "#upload-message", |t| t.contains("cannot be reached")).await;
    let kept = js(&customer, "return document.getElementById('chat-input').value").await;
    assert_eq!(kept, "Are you still there?", "the unsent message was not given back");
    // Long enough for the page to have retried (and, before this was fixed, given up on the room).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !is_shown(&customer, "#join-error").await,
        "the page gave up on the room during the outage"
    );
    shot(&customer, "customer-reconnecting").await;

    proxy.set_up(true);
    api_message(&rig.server, &agent_cookie, &room, "Sorry, we were updating.").await;
    wait_text(&customer, "#content", |t| t.contains("Sorry, we were updating.")).await;
    wait_text(&customer, "#connection", str::is_empty).await;
    // The kept text, sent again as it is, arrives once.
    click(&customer, "#send").await;
    wait_text(&customer, "#content", |t| t.contains("Are you still there?")).await;
    wait_text(&customer, "#upload-message", str::is_empty).await;
    let events = rig
        .server
        .http()
        .call("GET", &format!("/api/rooms/{room}/events"), Some(&agent_cookie), None)
        .await
        .json();
    let sent = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"] == "Are you still there?")
        .count();
    assert_eq!(sent, 1, "{events}");
    assert!(!is_shown(&customer, "#join-error").await);
    customer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_leaves_on_a_phone_ends_the_session_on_the_server() {
    let Some(rig) = rig() else { return };
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &room, "Here is your room.").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("Here is your room.")).await;
    let session = customer.get_named_cookie("collab_customer").await.unwrap();
    let cookie = format!("collab_customer={}", session.value());
    let me = rig.server.http().call("GET", "/api/me", Some(&cookie), None).await;
    assert_eq!(me.status, StatusCode::OK, "the session works before leaving");

    click(&customer, "#leave").await;
    accept_confirmation(&customer).await;
    wait_text(&customer, "#join-error", |t| t.contains("You left this room")).await;
    // A shared phone shows nothing of the room after its customer left.
    let shown = js(&customer, "return document.getElementById('content').textContent").await;
    assert_eq!(shown, "", "the conversation stays on screen after leaving");
    assert!(!is_shown(&customer, "#leave").await, "Leave is still offered");
    // The cookie the phone held no longer opens the room: the server ended the session.
    let me = rig.server.http().call("GET", "/api/me", Some(&cookie), None).await;
    assert_eq!(me.status, StatusCode::FORBIDDEN, "{:?}", me.json());
    axe(&customer, "the customer page after leaving").await;
    shot(&customer, "customer-left").await;
    customer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_erases_a_room_and_the_customer_s_phone_shows_it_gone() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &room, "Your account number is 4417.").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("account number is 4417")).await;

    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/#room={room}")).await.unwrap();
    sign_in(&agent).await;
    wait_text(&agent, "#content", |t| t.contains("account number is 4417")).await;
    click(&agent, "#erase-button").await;
    accept_confirmation(&agent).await;
    // The console shows the room as it is now: erased, its content gone, nothing to write with.
    wait_text(&agent, "#room-status", |t| t.contains("erased")).await;
    wait_text(&agent, "#content", |t| {
        t.contains("personal data was erased") && !t.contains("4417")
    })
    .await;
    for control in [
        "#invite-button",
        "#share-button",
        "#erase-button",
        "#chat-input",
        "#send",
    ] {
        let disabled = js(&agent, &format!("return document.querySelector('{control}').disabled")).await;
        assert_eq!(disabled, true, "{control} is still enabled in an erased room");
    }
    shot(&agent, "agent-erased-room").await;

    // The customer's page hears it: the content goes and the page says why.
    wait_text(&customer, "#join-error", |t| t.contains("erased")).await;
    let page = js(&customer, "return document.body.textContent + document.title").await;
    for personal in ["4417", "Ada", "Lovelace"] {
        assert!(
            !page.as_str().unwrap_or_default().contains(personal),
            "{personal}: {page}"
        );
    }
    axe(&customer, "the customer page of an erased room").await;
    shot(&customer, "customer-erased-room").await;
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inviting_a_customer_who_has_a_room_shows_that_room_first() {
    // Ada is invited three times within a minute: past the abuse guard's cool-down.
    let Some(rig) = rig_with(|command| {
        command.env("COLLAB_INVITE_LIMITS", "off");
    }) else {
        return;
    };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    // Ada Lovelace's room, invited through the API.
    let (room, _) = api_room(&rig.server, &agent_cookie).await;
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;

    // A new room, and Ada invited to it: the console shows her room first.
    invite_ada_in_a_new_room(&agent).await;
    axe(&agent, "the invite dialog naming the customer's room").await;
    shot(&agent, "agent-customer-has-a-room").await;
    // Sending again invites her here too, as the agent chose.
    click(&agent, "#invite-send").await;
    wait_text(&agent, "#invite-message", |t| t.contains("on its way")).await;
    press(&agent, ESCAPE).await;

    // Or the agent opens a room she has (the newest), instead of a third.
    let new_room = invite_ada_in_a_new_room(&agent).await;
    click(&agent, "#invite-message a").await;
    wait_text(&agent, "#room-name", |t| t == "Ada Lovelace").await;
    let opened = js(&agent, "return location.hash").await;
    assert_ne!(opened, new_room, "another room opened");
    assert!(!is_shown(&agent, "#invite-frame").await, "the dialog closed");
    // The room made through the API is still hers, and the new one has no customer.
    let rooms = rig
        .server
        .http()
        .call("GET", "/api/rooms?email=ada@example.com", Some(&agent_cookie), None)
        .await
        .json();
    let ids: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{rooms}");
    assert!(ids.contains(&room.as_str()));
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_merges_a_customer_s_rooms_and_her_phone_follows_to_the_survivor() {
    let Some(rig) = rig_with(|command| {
        command.env("COLLAB_INVITE_LIMITS", "off");
    }) else {
        return;
    };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    // Ada's first room, open on her phone.
    let (first, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &first, "Your parcel number is 7731.").await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("parcel number is 7731")).await;

    // In a new room, the agent invites Ada again and takes her first room in.
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;
    let second = invite_ada_in_a_new_room(&agent).await;
    axe(&agent, "the invite dialog offering to merge").await;
    shot(&agent, "agent-invite-and-merge").await;
    click(&agent, "#invite-and-merge").await;
    // The console shows the room that took the first in: its history is there, with the record.
    wait_text(&agent, "#content", |t| {
        t.contains("parcel number is 7731") && t.contains("merged into this one")
    })
    .await;
    assert_eq!(
        js(&agent, "return location.hash").await,
        second,
        "the agent stays in the new room"
    );
    assert!(!is_shown(&agent, "#invite-frame").await, "the dialog closed");
    axe(&agent, "the console after a merge").await;

    // Her phone hears that her room was merged and moves to the survivor on its own.
    wait_text(&customer, "#content", |t| t.contains("earlier conversation was added")).await;
    wait_text(&customer, "#content", |t| t.contains("parcel number is 7731")).await;
    type_into(&customer, "#chat-input", "Thanks, got it").await;
    click(&customer, "#send").await;
    wait_text(&agent, "#content", |t| t.contains("Thanks, got it")).await;
    axe(&customer, "the customer page after a merge").await;
    shot(&customer, "customer-merged-room").await;
    // The first room is history now: read-only, pointing to the survivor.
    let old = rig
        .server
        .http()
        .call("GET", &format!("/api/rooms/{first}"), Some(&agent_cookie), None)
        .await
        .json();
    assert_eq!(old["status"], "merged", "{old}");
    // In the console too: nothing to write with, and a way to the survivor.
    agent.goto(&format!("{base}/#room={first}")).await.unwrap();
    wait_text(&agent, "#room-status", |t| t == "merged").await;
    let disabled = js(&agent, "return document.querySelector('#chat-input').disabled").await;
    assert_eq!(disabled, true, "the chat is open in a merged room");
    click(&agent, "#content .item.system a").await;
    wait_text(&agent, "#content", |t| t.contains("Thanks, got it")).await;
    assert_eq!(js(&agent, "return location.hash").await, second);
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_the_tenant_s_settings_and_the_history_says_who() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;
    click(&agent, "#settings-button").await;
    wait_text(&agent, "#settings-who", |t| t.contains("Never changed")).await;
    // The dev agent is the dev tenant's admin: the form is open to it.
    let disabled = js(&agent, "return document.querySelector('#settings-save').disabled").await;
    assert_eq!(disabled, false);
    type_into(&agent, "#settings-timeout", "2").await;
    type_into(&agent, "#settings-message", "Quiet for a while: call us on 555-0100.").await;
    // The browser's own check refuses 2 days before the server sees it; the server's answer
    // names the field when it does.
    js(
        &agent,
        "document.querySelector('#settings-timeout').removeAttribute('min'); return null",
    )
    .await;
    click(&agent, "#settings-save").await;
    wait_text(&agent, "#settings-message-line", |t| t.contains("timeout_days")).await;
    js(
        &agent,
        "document.querySelector('#settings-timeout').value = ''; return null",
    )
    .await;
    type_into(&agent, "#settings-timeout", "5").await;
    click(&agent, "#settings-save").await;
    wait_text(&agent, "#settings-message-line", |t| t.contains("Saved")).await;
    wait_text(&agent, "#settings-who", |t| t.contains("agent@example.com")).await;
    click(&agent, "#settings-history-box summary").await;
    wait_text(&agent, "#settings-history", |t| {
        t.contains("Version 1") && t.contains("timeout days: 5") && t.contains("agent@example.com")
    })
    .await;
    axe(&agent, "the settings dialog").await;
    shot(&agent, "agent-settings").await;
    let settings = rig
        .server
        .http()
        .call("GET", "/api/settings", Some(&api_agent(&rig.server).await), None)
        .await
        .json();
    assert_eq!(settings["settings"]["timeout_days"], 5, "{settings}");
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_s_phone_shows_the_tenant_s_words_in_a_room_its_timeout_ended() {
    let Some(rig) = rig() else { return };
    // The server in process, on the test's clock, so that days can pass.
    let (server, base) = common::Server::start_listening().await;
    let ada = server.agent("ada", "secret").await;
    let room = server.create_room(&ada).await;
    let grace =
        json!({"channel": "email", "first_name": "Grace", "last_name": "Hopper", "identifier": "grace@example.com"});
    server.invite(&ada, &room, grace).await;
    let token = server.link_token(&ada, &room).await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&format!("{base}/join/{token}")).await.unwrap();
    wait_text(&customer, "#room-name", |t| t == "Grace Hopper").await;

    let words = "This room closed after 3 quiet days. Call Acme on 555-0100 and we will open it again.";
    let settings = json!({ "timeout_days": 3, "timed_out_message": words });
    let changed = server.call("PUT", "/api/settings", Some(&ada), Some(settings)).await;
    assert_eq!(changed.status, StatusCode::OK);
    server.clock.advance(Duration::from_secs(4 * 24 * 3600));
    customer.refresh().await.unwrap();
    wait_text(&customer, "#readonly-notice", |t| t == words).await;
    assert_writing_disabled(&customer, "a timed-out room").await;
    axe(&customer, "the customer page of a room the tenant's timeout ended").await;
    shot(&customer, "customer-tenant-timed-out").await;
    customer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_sees_what_the_other_has_read_and_the_console_counts_unread() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let http = rig.server.http();
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    api_message(&rig.server, &agent_cookie, &room, "Your form is ready to sign.").await;
    let room_view = async || {
        http.call("GET", &format!("/api/rooms/{room}"), Some(&agent_cookie), None)
            .await
            .json()
    };

    // The customer's phone shows the message, and says so to the server by itself.
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_text(&customer, "#content", |t| t.contains("Your form is ready to sign.")).await;
    let started = Instant::now();
    while room_view().await["seen_by_customer"].as_u64().unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the page never said it read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The customer writes twice; the console lists the room with two unread.
    for text in ["Signed, thank you.", "Anything else?"] {
        type_into(&customer, "#chat-input", text).await;
        click(&customer, "#send").await;
        wait_text(&customer, "#content .item.mine:last-of-type", |t| t.contains(text)).await;
    }
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;
    let badge = format!(".room-button[data-room='{room}'] .unread");
    wait_text(&agent, &badge, |t| t == "2").await;
    axe(&agent, "the console with an unread count").await;
    shot(&agent, "console-unread").await;

    // Opening the room reads it: the badge goes, the agent's message shows the customer saw
    // it, and the customer's phone shows "Seen" under her last message.
    click(&agent, &format!(".room-button[data-room='{room}']")).await;
    wait_text(&agent, "#content .item.mine .seen", |t| t == "Seen").await;
    wait_js(
        &agent,
        "the badge gone once the room is read",
        &format!("return document.querySelector(\"{badge}\") === null"),
        vec![],
        |v| v == true,
    )
    .await;
    wait_text(&customer, "#content .item.mine .seen", |t| t == "Seen").await;
    let seen_under = js(
        &customer,
        "const seen = document.querySelector('#content .seen'); return seen.closest('.item').textContent",
    )
    .await;
    assert!(
        seen_under.as_str().is_some_and(|t| t.contains("Anything else?")),
        "\"Seen\" under the last message the agent read: {seen_under}"
    );
    axe(&customer, "the customer page with Seen").await;
    shot(&customer, "customer-seen").await;
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_sees_the_other_typing_until_the_message_comes_or_it_expires() {
    let Some(rig) = rig() else { return };
    let base = rig.server.base.clone();
    let agent_cookie = api_agent(&rig.server).await;
    let (room, link) = api_room(&rig.server, &agent_cookie).await;
    let customer = phone(&rig.driver_url, &rig.dir.path().join("customer"), 390, 844).await;
    customer.goto(&link).await.unwrap();
    wait_visible(&customer, "#chat-input").await;
    let agent = desktop(&rig.driver_url, &rig.dir.path().join("agent"), 1280, 800).await;
    agent.goto(&format!("{base}/")).await.unwrap();
    sign_in(&agent).await;
    let room_button = format!(".room-button[data-room='{room}']");
    wait_visible(&agent, &room_button).await;
    click(&agent, &room_button).await;
    wait_visible(&agent, "#chat-input").await;

    // The customer types: the console says so, until her message arrives.
    type_into(&customer, "#chat-input", "I have a question").await;
    wait_text(&agent, "#typing", |t| t == "The customer is typing…").await;
    axe(&agent, "the console with the customer typing").await;
    shot(&agent, "console-typing").await;
    click(&customer, "#send").await;
    wait_text(&agent, "#content", |t| t.contains("I have a question")).await;
    wait_text(&agent, "#typing", str::is_empty).await;

    // The agent types: the phone says so, and stops saying it a few seconds after the agent
    // stops typing, though nothing was sent.
    type_into(&agent, "#chat-input", "Let me check").await;
    wait_text(&customer, "#typing", |t| t == "The agent is typing…").await;
    axe(&customer, "the customer page with the agent typing").await;
    shot(&customer, "customer-typing").await;
    let shown = Instant::now();
    wait_text(&customer, "#typing", str::is_empty).await;
    assert!(
        shown.elapsed() > Duration::from_secs(3),
        "gone after it expired, not at once: {:?}",
        shown.elapsed()
    );
    customer.close().await.unwrap();
    agent.close().await.unwrap();
}
