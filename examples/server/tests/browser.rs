//! The agent console and the customer page in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven through WebDriver: every step of the product, with a screenshot
//! of each under `target/screenshots/`.
//!
//! Without Chromium the test says so loudly and passes; under `CI=true` it fails instead, since
//! `.ci/run` installs Chromium.

// Tests fail by panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

async fn browser(driver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,860", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_end_to_end_in_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let message = "BROWSER TEST SKIPPED: /usr/bin/chromium or /usr/bin/chromedriver is missing \
                       (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{message}, and CI=true requires it"
        );
        eprintln!("\n*** {message} ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // The server as `cargo run` starts it, on a free port: the development agent, and invites
    // by email to the Dev inbox (dev mode); no SMS sender.
    let server = ServerProcess::start(|command| {
        command.arg("--data").arg(dir.path().join("data"));
    });
    let base = server.base.clone();

    let port = free_port();
    let _driver = KillOnDrop(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver_url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent = browser(&driver_url, &dir.path().join("agent-profile")).await;
    let customer = browser(&driver_url, &dir.path().join("customer-profile")).await;

    // 1. The agent signs in and creates a room: "Collaboration Room".
    agent.goto(&format!("{base}/")).await.unwrap();
    wait_visible(&agent, "#signin").await;
    type_into(&agent, "#agent", "agent@example.com").await;
    type_into(&agent, "#password", "dev").await;
    click(&agent, "#signin-button").await;
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

    // 5. The customer uploads an image; the agent sees it inline and enlarges it.
    let photo = dir.path().join("damage.png");
    std::fs::write(&photo, png(64, 48)).unwrap();
    choose_file(&customer, &photo).await;
    wait_text(&customer, "#upload-message", |t| t.contains("was shared")).await;
    wait_visible(&agent, "#content img.thumb").await;
    click(&agent, "#content img.thumb").await;
    wait_visible(&agent, "#lightbox").await;
    shot(&agent, "06-agent-image-enlarged").await;
    click(&agent, "#lightbox").await;

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
    type_into(&customer, "#pdf-page", "3").await;
    click(&customer, "#pdf-go").await;
    let started = Instant::now();
    loop {
        let frame = customer.find(Locator::Css("#pdf-frame")).await.unwrap();
        let src = frame.attr("src").await.unwrap().unwrap_or_default();
        if src.ends_with("#page=3") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the viewer is not at page 3: {src}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
