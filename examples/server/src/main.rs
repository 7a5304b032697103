//! `cargo run -p collab-server`: the example host on 127.0.0.1:8080, with its data in
//! `./collab-data` (SQLite for rooms, `documents/` for documents), or its rooms in PostgreSQL
//! with `--database postgres://…` to run several servers. Settings come from flags or the
//! environment; `--help` lists them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use collab_core::guard::CounterStore;
use collab_core::notify::Notifier;
use collab_core::rooms::{DeliveryConfig, ExistingCustomer, Rooms, RoomsConfig};
use collab_core::transport::Transport;
use collab_core::webhook::{WebhookConfig, WebhookSecret};
use collab_core::{AgentId, EmailAddress, EndpointId, Error, Locale, RoomStore, TenantId, WebhookEndpoint};
use collab_notify::smtp::SmtpAgentAlerts;
use collab_notify::vonage::SignatureMethod;
use collab_notify::webhook::HttpWebhookSender;
use collab_notify::{
    DevInbox, SecretString, SmtpConfig, SmtpEmail, SmtpSecurity, TwilioAuth, TwilioConfig, TwilioSender, TwilioSms,
    TwilioWebhook, VonageConfig, VonageReceipts, VonageSms,
};
use collab_server::auth::{Agents, PasswordCost, SignInLimits};
use collab_server::quota::{HostLimits, Quotas};
use collab_server::serve::ConnectionLimits;
use collab_server::streams::{LiveStreams, StreamLimits};
use collab_server::{AppState, Inbox, Shared, app};
use collab_store_postgres::{PostgresConfig, PostgresRoomStore, PostgresTransport};
use collab_store_s3::{Durability, ObjectBlobStore};
use collab_store_sqlite::SqliteRoomStore;
use collab_transport_nats::{NatsConfig, NatsTransport};
use sha2::{Digest, Sha256};

const HELP: &str = "\
collab-server: the collab example host

Flags (or environment variables):
  --addr ADDR        where to listen (COLLAB_ADDR), default 127.0.0.1:8080
  --data DIR         where rooms and documents are kept (COLLAB_DATA), default ./collab-data
  --database URL     keep rooms in PostgreSQL instead of DIR (COLLAB_DATABASE):
                     postgres://user:password@host:port/dbname; live events then reach
                     every server on that database (give them all shared --documents)
  --nats URL         with --database: live events between servers through NATS
                     (nats://host:port, COLLAB_NATS) instead of PostgreSQL's NOTIFY, which
                     then leaves the appends' transactions; every server must use it
  --database-schema NAME
                     the schema for collab's tables (COLLAB_DATABASE_SCHEMA), default the
                     user's default (public)
  --base-url URL     the public URL in invite links (COLLAB_BASE_URL), default http://ADDR
  --documents URL    where documents go (COLLAB_DOCUMENTS): file:///path, s3://bucket/prefix
                     (settings from AWS_* variables), memory://; default DIR/documents
  --agents LIST      agents as [tenant/]id:password,... (COLLAB_AGENTS); an agent sees
                     only its tenant's rooms (without one: tenant example);
                     default one dev agent: agent@example.com:dev, only on a loopback
                     address and with a loopback --base-url
  --admins LIST      the agents who may change their tenant's settings, as [tenant/]id,...
                     (COLLAB_ADMINS); default none, or the dev agent with the dev default
  --lease SECONDS    how long a dispatcher holds an invite it is sending before another
                     process may take it over (COLLAB_DELIVERY_LEASE), at least 5, default 60
  --links supersede|keep
                     whether a new invite's link supersedes the earlier links of its channel
                     (they stop opening the room; their sessions go on) or all are kept until
                     they expire (COLLAB_LINKS), default supersede
  --retention-days N rooms that timed out, closed or were erased more than N days ago are
                     purged, with their documents, by an hourly sweep (COLLAB_RETENTION_DAYS),
                     at least 1; default none: rooms are kept
  --metrics-addr ADDR
                     serve Prometheus metrics at http://ADDR/metrics, a listener of its own
                     off the public API (COLLAB_METRICS_ADDR); default none
  --locale TAG       the language of customer pages and invites of tenants without their own
                     (COLLAB_LOCALE), default en; the page has en, es and he (assets/i18n/)
  --tenant-locales LIST
                     each tenant's language, tenant=tag,... (COLLAB_TENANT_LOCALES),
                     e.g. acme=he,example=es
  --browser-locale allow|deny
                     whether a customer's page follows their browser's language where the
                     page has it, rather than the tenant's (COLLAB_BROWSER_LOCALE), default deny

Connection limits (flags or environment; times in whole seconds, each at least 1):
  --header-timeout SECONDS
                     time to send a request's headers (COLLAB_HEADER_TIMEOUT), default 10
  --idle-timeout SECONDS
                     a connection with no request in progress is closed after this
                     (COLLAB_IDLE_TIMEOUT), default 10
  --body-timeout SECONDS
                     time to send a request's whole body, an upload's included
                     (COLLAB_BODY_TIMEOUT), default 300
  --live-streams-per-session N
                     live streams open at once per agent or customer
                     (COLLAB_LIVE_STREAMS_PER_SESSION), default 8
  --live-streams-per-address N
                     live streams open at once per client address
                     (COLLAB_LIVE_STREAMS_PER_ADDRESS), default 64; behind a proxy every
                     client has its address: raise it there

Abuse limits (flags or environment); refusals answer 429 with Retry-After:
  --message-burst N  chat messages one agent, or a room's customer (all their sessions), may
                     post at once (COLLAB_MESSAGE_BURST), default 30
  --message-rate N   chat messages a second one agent or customer may post, sustained
                     (COLLAB_MESSAGE_RATE), default 2
  --upload-burst N   documents one agent or customer may upload at once
                     (COLLAB_UPLOAD_BURST), default 10
  --upload-rate N    documents a minute one agent or customer may upload, sustained
                     (COLLAB_UPLOAD_RATE), default 10
  --join-burst N     invite links one client address may open at once (POST /api/join;
                     an IPv6 address counts by its /64) (COLLAB_JOIN_BURST), default 20
  --join-rate N      invite links a minute one client address may open, sustained
                     (COLLAB_JOIN_RATE), default 20; behind a proxy every client has its
                     address: raise both there
  --room-quota-mib N the most MiB of documents one room keeps (COLLAB_ROOM_QUOTA_MIB),
                     default 1024; an upload past it is refused (413 quota_exceeded)
  --invite-limits on|off
                     the SMS and email invite guard (COLLAB_INVITE_LIMITS), default on:
                     3 invites per number or address an hour, a cool-down between invites
                     to one recipient, 10 SMS per number block an hour, 10 invites per room
                     a day, 50 per agent an hour, 1,000 SMS per tenant a day, mobile
                     numbers only; counted in the rooms database
  --invites-per-recipient N
                     invites to one number or address an hour
                     (COLLAB_INVITES_PER_RECIPIENT), default 3
  --invite-cooldown SECONDS
                     the wait after an invite before the next one to the same recipient,
                     doubling with each invite of the day, at most 6 h
                     (COLLAB_INVITE_COOLDOWN), default 60; 0 for none
  --sms-countries LIST
                     SMS only to numbers of these countries, as FR,BE,...
                     (COLLAB_SMS_COUNTRIES), default all
  --sign-in-failures ACCOUNT,ADDRESS
                     failed sign-ins within 15 minutes that lock an agent, and that refuse
                     a client address, for 15 minutes (COLLAB_SIGN_IN_FAILURES), default
                     5,30; behind a proxy every client has its address: raise it there

Notifiers (environment only; without them invites go to the Dev inbox, /api/dev/inbox, which
is there only while a notifier sends to it):
  COLLAB_SMS=dev                         activate SMS through the Dev inbox (no account needed)
  TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, COLLAB_SMS_FROM [, TWILIO_BASE_URL]
                                         SMS through Twilio (status callbacks on
                                         BASE_URL/api/callbacks/twilio; TWILIO_BASE_URL
                                         for a regional edge or a test server)
  VONAGE_API_KEY, VONAGE_API_SECRET, COLLAB_SMS_FROM [, VONAGE_SIGNATURE_SECRET,
  VONAGE_SIGNATURE_METHOD]               SMS through Vonage (with the account's signature secret,
                                         signed delivery receipts on
                                         BASE_URL/api/callbacks/vonage; the method md5hash (the
                                         default), md5, sha1, sha256 or sha512)
  COLLAB_SMTP_HOST, COLLAB_EMAIL_FROM [, COLLAB_SMTP_PORT, COLLAB_SMTP_USER, COLLAB_SMTP_PASSWORD]
                                         email over SMTP with STARTTLS; also emails a room's
                                         agent (when the agent's id is an email address) once
                                         the customer's messages wait 5 minutes unread
  COLLAB_CUSTOMER_REMINDERS=on           remind the customer by a new SMS or email invite when
                                         the agents' messages wait 5 minutes unread (off by
                                         default: each reminder is a message to pay for)
  COLLAB_EXISTING_CUSTOMER=invite|answer|merge
                                         an SMS or email invite to a customer who has another
                                         room: invite here too (the default), answer 409
                                         customer_has_room naming it, or merge it into this one

Webhooks (environment only):
  COLLAB_WEBHOOKS=tenant=URL,...         post every room event of these tenants to these URLs,
                                         signed the Standard Webhooks way (README, Webhooks)
  COLLAB_WEBHOOK_SECRET=whsec_...        the signing secret (needed with COLLAB_WEBHOOKS)
  COLLAB_WEBHOOK_NETWORKS=public|private public (the default) posts only to https URLs on
                                         public addresses; private also to http and to
                                         private and loopback addresses
";

/// The webhook endpoints of `COLLAB_WEBHOOKS`, and the sender: none without the variable.
fn webhooks() -> Result<Option<(HttpWebhookSender, WebhookConfig)>, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(list) = env("COLLAB_WEBHOOKS") else {
        return Ok(None);
    };
    let secret = env("COLLAB_WEBHOOK_SECRET").ok_or("COLLAB_WEBHOOKS needs COLLAB_WEBHOOK_SECRET (whsec_...)")?;
    let secret = WebhookSecret::parse(&secret).map_err(|e| format!("COLLAB_WEBHOOK_SECRET: {e}"))?;
    let timeout = Duration::from_secs(10);
    let sender = match env("COLLAB_WEBHOOK_NETWORKS").as_deref() {
        None | Some("public") => HttpWebhookSender::new(timeout),
        Some("private") => HttpWebhookSender::allowing_private_networks(timeout),
        Some(_) => return Err("COLLAB_WEBHOOK_NETWORKS is public or private".to_owned()),
    }
    .map_err(|e| format!("webhook sender: {e}"))?;
    let mut config = WebhookConfig::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (tenant, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("COLLAB_WEBHOOKS: {entry:?} is not tenant=URL"))?;
        let tenant = TenantId::new(tenant).map_err(|e| format!("COLLAB_WEBHOOKS: {e}"))?;
        // Queued rows name their endpoint: its id must stay the same across restarts.
        let digest = Sha256::digest(format!("{tenant} {url}").as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let endpoint = WebhookEndpoint::new(EndpointId::from_u128(u128::from_be_bytes(id)), url, secret.clone())
            .map_err(|e| format!("COLLAB_WEBHOOKS: {e}"))?;
        config = config
            .with_endpoint(tenant, endpoint)
            .map_err(|e| format!("COLLAB_WEBHOOKS: {e}"))?;
    }
    Ok(Some((sender, config)))
}

/// The development agent, when none is configured.
const DEV_AGENT: &str = "agent@example.com:dev";

/// The settings, from flags first, then the environment, then the defaults.
struct Settings {
    addr: String,
    data: PathBuf,
    base_url: Option<String>,
    documents: Option<String>,
    database: Option<String>,
    database_schema: Option<String>,
    agents: String,
    /// `[tenant/]id,...`: the agents who may change their tenant's settings.
    admins: Option<String>,
    lease: Option<String>,
    retention_days: Option<String>,
    links: Option<String>,
    metrics_addr: Option<String>,
    nats: Option<String>,
    locale: Option<String>,
    tenant_locales: Option<String>,
    browser_locale: Option<String>,
    /// The connection and live-stream limits, as given: (flag, value).
    limits: Vec<(&'static str, String)>,
    /// The abuse limits ([`HostLimits::FLAGS`]), as given: (flag, value).
    abuse_limits: Vec<(String, String)>,
    /// `ACCOUNT,ADDRESS`: the failed sign-ins that lock an agent and refuse an address.
    sign_in_failures: Option<String>,
}

/// The limits' flags and their variables.
const LIMIT_FLAGS: [(&str, &str); 5] = [
    ("--header-timeout", "COLLAB_HEADER_TIMEOUT"),
    ("--idle-timeout", "COLLAB_IDLE_TIMEOUT"),
    ("--body-timeout", "COLLAB_BODY_TIMEOUT"),
    ("--live-streams-per-session", "COLLAB_LIVE_STREAMS_PER_SESSION"),
    ("--live-streams-per-address", "COLLAB_LIVE_STREAMS_PER_ADDRESS"),
];

fn settings() -> Result<Settings, String> {
    let mut args = std::env::args().skip(1);
    let env = |name: &str| std::env::var(name).ok();
    let mut settings = Settings {
        addr: env("COLLAB_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
        data: env("COLLAB_DATA").map_or_else(|| PathBuf::from("collab-data"), PathBuf::from),
        base_url: env("COLLAB_BASE_URL"),
        documents: env("COLLAB_DOCUMENTS"),
        database: env("COLLAB_DATABASE"),
        database_schema: env("COLLAB_DATABASE_SCHEMA"),
        agents: env("COLLAB_AGENTS").unwrap_or_else(|| DEV_AGENT.to_owned()),
        admins: env("COLLAB_ADMINS"),
        lease: env("COLLAB_DELIVERY_LEASE"),
        retention_days: env("COLLAB_RETENTION_DAYS"),
        links: env("COLLAB_LINKS"),
        metrics_addr: env("COLLAB_METRICS_ADDR"),
        nats: env("COLLAB_NATS"),
        locale: env("COLLAB_LOCALE"),
        tenant_locales: env("COLLAB_TENANT_LOCALES"),
        browser_locale: env("COLLAB_BROWSER_LOCALE"),
        limits: LIMIT_FLAGS
            .iter()
            .filter_map(|&(flag, variable)| Some((flag, env(variable)?)))
            .collect(),
        abuse_limits: HostLimits::FLAGS
            .iter()
            .filter_map(|&(flag, variable)| Some((flag.to_owned(), env(variable)?)))
            .collect(),
        sign_in_failures: env("COLLAB_SIGN_IN_FAILURES"),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => settings.addr = value()?,
            "--data" => settings.data = PathBuf::from(value()?),
            "--base-url" => settings.base_url = Some(value()?),
            "--documents" => settings.documents = Some(value()?),
            "--database" => settings.database = Some(value()?),
            "--database-schema" => settings.database_schema = Some(value()?),
            "--agents" => settings.agents = value()?,
            "--admins" => settings.admins = Some(value()?),
            "--lease" => settings.lease = Some(value()?),
            "--retention-days" => settings.retention_days = Some(value()?),
            "--links" => settings.links = Some(value()?),
            "--metrics-addr" => settings.metrics_addr = Some(value()?),
            "--nats" => settings.nats = Some(value()?),
            "--locale" => settings.locale = Some(value()?),
            "--tenant-locales" => settings.tenant_locales = Some(value()?),
            "--browser-locale" => settings.browser_locale = Some(value()?),
            "--sign-in-failures" => settings.sign_in_failures = Some(value()?),
            abuse if HostLimits::is_flag(abuse) => settings.abuse_limits.push((abuse.to_owned(), value()?)),
            "-h" | "--help" => return Err(HELP.to_owned()),
            other => match LIMIT_FLAGS.iter().find(|(limit, _)| *limit == other) {
                Some(&(limit, _)) => settings.limits.push((limit, value()?)),
                None => return Err(format!("unknown flag {other}\n\n{HELP}")),
            },
        }
    }
    Ok(settings)
}

/// The connection and live-stream limits the settings give (a flag wins over its variable: it
/// comes later), the defaults for the others.
fn limits(given: &[(&'static str, String)]) -> Result<(ConnectionLimits, StreamLimits), String> {
    let (mut connection, mut streams) = (ConnectionLimits::default(), StreamLimits::default());
    for (flag, value) in given {
        let number: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{flag} is a whole number, not {value:?}"))?;
        let fail = |e: Error| format!("{flag}: {e}");
        let seconds = Duration::from_secs(number);
        let count = usize::try_from(number).unwrap_or(usize::MAX);
        match *flag {
            "--header-timeout" => connection = connection.with_header_read_timeout(seconds).map_err(fail)?,
            "--idle-timeout" => connection = connection.with_idle_timeout(seconds).map_err(fail)?,
            "--body-timeout" => connection = connection.with_body_timeout(seconds).map_err(fail)?,
            "--live-streams-per-session" => streams = streams.with_per_session(count).map_err(fail)?,
            "--live-streams-per-address" => streams = streams.with_per_address(count).map_err(fail)?,
            // LIMIT_FLAGS names no other.
            _ => {}
        }
    }
    Ok((connection, streams))
}

/// The language settings, and the invite texts of every language the customer page has.
fn languages(mut config: RoomsConfig, settings: &Settings) -> Result<RoomsConfig, String> {
    if let Some(tag) = &settings.locale {
        config = config.with_default_locale(Locale::parse(tag).map_err(|e| format!("locale: {e}"))?);
    }
    let tenant_locales = settings.tenant_locales.as_deref().unwrap_or("");
    for (tenant, locale) in collab_server::i18n::parse_tenant_locales(tenant_locales)? {
        config = config.with_tenant_locale(tenant, locale);
    }
    let browser = match settings.browser_locale.as_deref() {
        None | Some("deny") => false,
        Some("allow") => true,
        Some(_) => return Err("--browser-locale is allow or deny".to_owned()),
    };
    let config = config.with_browser_locale(browser);
    Ok(collab_server::i18n::with_invite_texts(config))
}

/// Where rooms are kept, and the transport that carries their live events between servers.
struct RoomsDatabase {
    store: Arc<dyn RoomStore>,
    /// The same database, counting for the invite guard.
    counters: Arc<dyn CounterStore>,
    transport: Option<Arc<dyn Transport>>,
    description: String,
}

async fn rooms_database(settings: &Settings) -> Result<RoomsDatabase, String> {
    let fail = |e: Error| format!("rooms database: {e}");
    let Some(url) = &settings.database else {
        if settings.nats.is_some() {
            return Err("--nats carries live events between servers on one database: give --database too".into());
        }
        let path = settings.data.join("rooms.db");
        let store = Arc::new(SqliteRoomStore::open(&path).await.map_err(fail)?);
        return Ok(RoomsDatabase {
            store: store.clone(),
            counters: store,
            transport: None,
            description: path.display().to_string(),
        });
    };
    let mut config = PostgresConfig::new(url).map_err(fail)?;
    if let Some(schema) = &settings.database_schema {
        config = config.with_schema(schema).map_err(fail)?;
    }
    // Never the URL itself: it may hold a password.
    let description = format!(
        "PostgreSQL{}",
        config.schema().map(|s| format!(", schema {s}")).unwrap_or_default()
    );
    let (transport, description): (Arc<dyn Transport>, _) = match &settings.nats {
        Some(nats) => {
            config = config.with_notify(false);
            let nats = NatsConfig::new(nats).map_err(|e| format!("NATS: {e}"))?;
            let transport = NatsTransport::connect(&nats).await.map_err(|e| format!("NATS: {e}"))?;
            (Arc::new(transport), format!("{description}, live events through NATS"))
        }
        None => (
            Arc::new(PostgresTransport::connect(&config).await.map_err(fail)?),
            description,
        ),
    };
    let store = Arc::new(PostgresRoomStore::connect(&config).await.map_err(fail)?);
    Ok(RoomsDatabase {
        store: store.clone(),
        counters: store,
        transport: Some(transport),
        description,
    })
}

/// The tenant of agents listed without one.
const DEFAULT_TENANT: &str = "example";

/// `[tenant/]id:password,...`: the password is everything after the first `:`. The passwords
/// are hashed here (argon2id at OWASP's cost; the development agent's, which is public, at
/// the least cost) and not kept.
fn parse_agents(list: &str) -> Result<Agents, String> {
    let tenant = |name: &str| TenantId::new(name).map_err(|e| format!("agents: {e}"));
    let cost = if list == DEV_AGENT {
        PasswordCost::MINIMAL
    } else {
        PasswordCost::OWASP
    };
    let mut agents = Agents::new(tenant(DEFAULT_TENANT)?, HashMap::new()).with_password_cost(cost);
    let mut seen = HashSet::new();
    for (n, entry) in list.split(',').filter(|entry| !entry.trim().is_empty()).enumerate() {
        // Never echo an entry: it may hold a password.
        let (who, password) = entry
            .split_once(':')
            .ok_or_else(|| format!("agents: entry {} is not [tenant/]id:password", n + 1))?;
        let who = who.trim();
        let (tenant_name, id) = who.split_once('/').unwrap_or((DEFAULT_TENANT, who));
        if !seen.insert(id.to_owned()) {
            return Err(format!("agents: {id} is listed twice"));
        }
        let passwords = HashMap::from([(id.to_owned(), password.to_owned())]);
        agents = agents.with_tenant(tenant(tenant_name)?, passwords);
    }
    Ok(agents)
}

/// `agents` with the admins of `--admins [tenant/]id,...`.
fn with_admins(mut agents: Agents, list: &str) -> Result<Agents, String> {
    for who in list.split(',').map(str::trim).filter(|who| !who.is_empty()) {
        let (tenant, id) = who.split_once('/').unwrap_or((DEFAULT_TENANT, who));
        let tenant = TenantId::new(tenant).map_err(|e| format!("admins: {e}"))?;
        agents = agents.with_admin(tenant, id);
    }
    Ok(agents)
}

/// The sign-in limits of `--sign-in-failures ACCOUNT,ADDRESS`, the defaults without it.
fn sign_in_limits(given: Option<&str>) -> Result<SignInLimits, String> {
    let Some(given) = given else {
        return Ok(SignInLimits::default());
    };
    let number = |n: &str| n.trim().parse::<u32>().ok();
    let (account, address) = given
        .split_once(',')
        .and_then(|(account, address)| Some((number(account)?, number(address)?)))
        .ok_or_else(|| format!("--sign-in-failures is ACCOUNT,ADDRESS, two whole numbers, not {given:?}"))?;
    SignInLimits::default()
        .with_failures(account, address)
        .map_err(|e| format!("--sign-in-failures: {e}"))
}

/// The notifiers the environment asks for.
struct Notifiers {
    sms: Option<Arc<dyn Notifier>>,
    email: Arc<dyn Notifier>,
    twilio: Option<TwilioWebhook>,
    vonage: Option<VonageReceipts>,
    /// Whether SMS or email goes to the Dev inbox (dev mode): only then is it shown.
    dev_inbox: bool,
    /// Agent alerts, by email when SMTP is configured.
    alerts: Option<SmtpAgentAlerts>,
}

/// Whether the host of `url` is a loopback one: `localhost` (or a name under it, which
/// resolves to loopback by RFC 6761) or a loopback IP address. Any other name may be public.
fn has_loopback_host(url: &str) -> bool {
    let origin = collab_server::origin_of(url);
    let authority = origin.split_once("://").map_or(origin.as_str(), |(_, rest)| rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(host, _)| host),
        None => authority.split_once(':').map_or(authority, |(host, _)| host),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn notifiers(base_url: &str, inbox: &DevInbox) -> Result<Notifiers, String> {
    fn fail(what: &'static str) -> impl Fn(Error) -> String {
        move |e| format!("{what}: {e}")
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dev: Arc<dyn Notifier> = Arc::new(inbox.clone());
    let mut twilio = None;
    let mut vonage = None;
    let mut dev_inbox = false;
    let sms: Option<Arc<dyn Notifier>> = match (env("TWILIO_ACCOUNT_SID"), env("VONAGE_API_KEY"), env("COLLAB_SMS")) {
        (Some(sid), _, _) => {
            let token = env("TWILIO_AUTH_TOKEN").ok_or("TWILIO_AUTH_TOKEN is missing")?;
            let from = env("COLLAB_SMS_FROM").ok_or("COLLAB_SMS_FROM (the sender number) is missing")?;
            let config = TwilioConfig::new(
                &sid,
                TwilioAuth::AuthToken(SecretString::from(token.clone())),
                TwilioSender::From(from),
            )
            .and_then(|c| c.with_status_callback(&format!("{base_url}/api/callbacks/twilio")))
            .and_then(|c| match env("TWILIO_BASE_URL") {
                Some(url) => c.with_base_url(&url),
                None => Ok(c),
            })
            .map_err(fail("Twilio"))?;
            twilio = Some(TwilioWebhook::new(SecretString::from(token)));
            Some(Arc::new(TwilioSms::new(config).map_err(fail("Twilio"))?))
        }
        (None, Some(key), _) => {
            let secret = env("VONAGE_API_SECRET").ok_or("VONAGE_API_SECRET is missing")?;
            let from = env("COLLAB_SMS_FROM").ok_or("COLLAB_SMS_FROM (the sender) is missing")?;
            let mut config = VonageConfig::new(&key, SecretString::from(secret), &from).map_err(fail("Vonage"))?;
            if let Some(signature_secret) = env("VONAGE_SIGNATURE_SECRET") {
                let method = env("VONAGE_SIGNATURE_METHOD").unwrap_or_else(|| "md5hash".to_owned());
                let method = SignatureMethod::parse(&method).map_err(fail("VONAGE_SIGNATURE_METHOD"))?;
                config = config
                    .with_status_callback(&format!("{base_url}/api/callbacks/vonage"))
                    .map_err(fail("Vonage"))?;
                vonage = Some(VonageReceipts::new(SecretString::from(signature_secret), method));
            }
            Some(Arc::new(VonageSms::new(config).map_err(fail("Vonage"))?))
        }
        (None, None, Some(mode)) if mode == "dev" => {
            dev_inbox = true;
            Some(dev.clone())
        }
        _ => None,
    };
    let mut alerts = None;
    let email: Arc<dyn Notifier> = match env("COLLAB_SMTP_HOST") {
        Some(host) => {
            let from = env("COLLAB_EMAIL_FROM").ok_or("COLLAB_EMAIL_FROM is missing")?;
            let mut config = SmtpConfig::new(&host, SmtpSecurity::StartTls, &from).map_err(fail("SMTP"))?;
            if let Some(port) = env("COLLAB_SMTP_PORT") {
                config = config.with_port(port.parse().map_err(|_| "COLLAB_SMTP_PORT is not a port")?);
            }
            if let (Some(user), Some(password)) = (env("COLLAB_SMTP_USER"), env("COLLAB_SMTP_PASSWORD")) {
                config = config
                    .with_credentials(&user, SecretString::from(password))
                    .map_err(fail("SMTP"))?;
            }
            let smtp = Arc::new(SmtpEmail::new(config).map_err(fail("SMTP"))?);
            // The example's agents sign in with their email address as their id.
            let console = format!("{base_url}/#room={{room}}");
            let address_of = |_: &TenantId, agent: &AgentId| EmailAddress::parse(agent.as_str()).ok();
            alerts = Some(SmtpAgentAlerts::new(smtp.clone(), &console, address_of).map_err(fail("SMTP"))?);
            smtp
        }
        None => {
            dev_inbox = true;
            dev
        }
    };
    Ok(Notifiers {
        sms,
        email,
        twilio,
        vonage,
        dev_inbox,
        alerts,
    })
}

// Under glibc's allocator, a burst of memory use (when other work starved the machine and 1,100
// live streams fell behind) stayed resident for the rest of a soak run; mimalloc returns freed
// memory (BENCHMARKS.md, "Soak").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(message) = run().await {
        eprintln!("{message}");
        std::process::exit(2);
    }
}

/// Installs the Prometheus recorder and serves `/metrics` on `addr`: where it listens.
async fn serve_metrics(addr: &str, limits: ConnectionLimits) -> Result<std::net::SocketAddr, String> {
    let handle = collab_server::metrics::install()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // The same connection limits as the public listener; it ends with the process.
    let router = collab_server::metrics::router(handle);
    tokio::spawn(collab_server::serve::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    Ok(bound)
}

async fn run() -> Result<(), String> {
    let settings = settings()?;
    let (connection_limits, stream_limits) = limits(&settings.limits)?;
    // First, so that the service's calls from the start are counted.
    let metrics_addr = match &settings.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, connection_limits).await?),
        None => None,
    };
    let abuse_limits = HostLimits::parse(&settings.abuse_limits)?;
    fn fail(what: &'static str) -> impl Fn(Error) -> String {
        move |e| format!("{what}: {e}")
    }
    std::fs::create_dir_all(&settings.data).map_err(|e| format!("data folder {}: {e}", settings.data.display()))?;
    let listener = tokio::net::TcpListener::bind(&settings.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base_url = settings
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let origin = collab_server::origin_of(&base_url);
    let public_host = origin
        .split_once("://")
        .map_or(origin.as_str(), |(_, host)| host)
        .to_owned();
    let allowed_hosts = vec![public_host, addr.to_string(), format!("localhost:{}", addr.port())];
    let database = rooms_database(&settings).await?;
    let documents = match &settings.documents {
        Some(url) => ObjectBlobStore::from_url(url).map_err(fail("documents"))?,
        None => {
            ObjectBlobStore::local(settings.data.join("documents"), Durability::Synced).map_err(fail("documents"))?
        }
    }
    .build()
    .map_err(fail("documents"))?;
    let inbox = DevInbox::new(100);
    let mut delivery = DeliveryConfig::default();
    if let Some(lease) = &settings.lease {
        let seconds = lease.parse().map_err(|_| "the lease is a number of seconds")?;
        delivery = delivery
            .with_lease(Duration::from_secs(seconds))
            .map_err(fail("lease"))?;
    }
    let config = RoomsConfig::default()
        .with_base_url(&base_url)
        .map_err(fail("base URL"))?
        .with_delivery(delivery)
        .with_max_room_bytes(abuse_limits.room_bytes)
        .map_err(fail("room quota"))?;
    let config = match &settings.retention_days {
        Some(days) => {
            let days: u64 = days
                .trim()
                .parse()
                .map_err(|_| format!("--retention-days is a whole number, not {days:?}"))?;
            let retention = Duration::from_secs(days.saturating_mul(24 * 3600));
            config.with_retention(retention).map_err(fail("retention"))?
        }
        None => config,
    };
    let supersede = match settings.links.as_deref() {
        None | Some("supersede") => true,
        Some("keep") => false,
        Some(_) => return Err("--links is supersede or keep".to_owned()),
    };
    let reminders = match std::env::var("COLLAB_CUSTOMER_REMINDERS").ok().as_deref() {
        None | Some("" | "off") => false,
        Some("on") => true,
        Some(_) => return Err("COLLAB_CUSTOMER_REMINDERS is on or off".to_owned()),
    };
    let existing = match std::env::var("COLLAB_EXISTING_CUSTOMER").ok().as_deref() {
        None | Some("" | "invite") => ExistingCustomer::InviteHere,
        Some("answer") => ExistingCustomer::Answer,
        Some("merge") => ExistingCustomer::Merge,
        Some(_) => return Err("COLLAB_EXISTING_CUSTOMER is invite, answer or merge".to_owned()),
    };
    let config = config
        .with_customer_reminders(reminders)
        .with_existing_customer(existing);
    let policy = config.policy().clone().with_superseding_links(supersede);
    let config = languages(config.with_policy(policy), &settings)?;
    let notifiers = notifiers(&base_url, &inbox)?;
    let mut builder = Rooms::builder()
        .room_store(database.store)
        .blob_store(documents)
        .config(config);
    if let Some(transport) = database.transport {
        builder = builder.transport(transport);
    }
    let invite_guard = abuse_limits.invite_guard(database.counters).map(Arc::new);
    if let Some(guard) = &invite_guard {
        builder = builder.invite_guard(guard.clone());
    }
    if let Some(sms) = notifiers.sms {
        builder = builder.sms(sms);
    }
    if let Some(alerts) = notifiers.alerts {
        builder = builder.agent_alerts(alerts);
    }
    if let Some((sender, webhooks)) = webhooks()? {
        builder = builder.webhooks(sender, webhooks);
    }
    let dev_agent = settings.agents == DEV_AGENT;
    let admins = match (&settings.admins, dev_agent) {
        (Some(list), _) => list.clone(),
        (None, true) => "agent@example.com".to_owned(),
        (None, false) => String::new(),
    };
    let agents = with_admins(parse_agents(&settings.agents)?, &admins)?
        .with_sign_in_limits(sign_in_limits(settings.sign_in_failures.as_deref())?);
    let rooms = builder.email(notifiers.email).access_hook(agents.admin_hook()).build();
    if dev_agent && !addr.ip().is_loopback() {
        return Err(
            "the dev agent (agent@example.com:dev) may only sign in on a loopback address: set --agents".into(),
        );
    }
    // Behind a reverse proxy the server listens on loopback, yet the public reaches it: the base
    // URL says so.
    if dev_agent && !has_loopback_host(&base_url) {
        return Err(format!(
            "the dev agent (agent@example.com:dev) may only sign in on a loopback address, and the \
             base URL {base_url} is not one: set --agents"
        ));
    }
    let state = AppState::new(Shared {
        rooms: rooms.clone(),
        agents,
        inbox: notifiers.dev_inbox.then(|| Arc::new(inbox) as Arc<dyn Inbox>),
        secure_cookies: base_url.starts_with("https://"),
        origin,
        twilio: notifiers.twilio,
        vonage: notifiers.vonage,
        allowed_hosts,
        live_streams: LiveStreams::new(stream_limits),
        quotas: Quotas::new(abuse_limits.quotas),
    });

    tokio::spawn({
        let rooms = rooms.clone();
        async move { rooms.run_dispatcher().await }
    });
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(Duration::from_secs(3600));
        loop {
            hourly.tick().await;
            if let Err(e) = rooms.sweep_timeouts().await {
                tracing::warn!(error = %e, "timeout sweep failed");
            }
            // Documents whose upload died before its event (a crash, a failed clean-up).
            match rooms.sweep_orphan_documents().await {
                Ok(sweep) if sweep.orphans > 0 => tracing::info!(?sweep, "orphan documents swept"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "orphan document sweep failed"),
            }
            // Without a retention, nothing is purged (it logs its counts itself).
            if let Err(e) = rooms.sweep_retention().await {
                tracing::warn!(error = %e, "retention sweep failed");
            }
            if let Some(guard) = &invite_guard
                && let Err(e) = guard.forget_old_hits().await
            {
                tracing::warn!(error = %e, "forgetting old abuse-guard counts failed");
            }
        }
    });

    println!("collab example server on {base_url}");
    println!("  agent console: {base_url}/");
    if dev_agent {
        println!("  sign in as agent@example.com with password \"dev\" (set --agents to change)");
    }
    println!("  data in {}", settings.data.display());
    println!("  rooms in {}", database.description);
    println!(
        "  documents in {}",
        settings.documents.as_deref().unwrap_or("the data folder's documents/")
    );
    if let Some(addr) = metrics_addr {
        println!("  metrics on http://{addr}/metrics");
    }
    collab_server::serve::serve(listener, app(state), connection_limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::has_loopback_host;

    #[test]
    fn only_loopback_hosts_are_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080/",
            "http://localhost",
            "https://LocalHost.:8443/collab",
            "http://app.localhost:8080",
        ] {
            assert!(has_loopback_host(url), "{url}");
        }
        for url in [
            "https://collab.example.com",
            "http://0.0.0.0:8080",
            "http://10.0.0.5",
            "http://[2001:db8::1]:8080",
            "http://localhost@collab.example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(!has_loopback_host(url), "{url}");
        }
    }
}
