//! The `mqgate` command: runs the gateway, checks a configuration, writes the
//! OpenAPI documents.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqgate::config::Config;
use mqgate::gateway::{Gateway, StartError};

#[derive(Parser)]
#[command(
    version,
    about = "One MQTT broker that speaks five vendors' management APIs"
)]
struct Cli {
    /// Configuration file (default: config/mqgate.toml if present, else embedded defaults).
    #[arg(long, global = true, env = "MQGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Load and check the configuration, print it as TOML-equivalent JSON, start nothing.
    CheckConfig,
    /// Write every dialect's OpenAPI document into a directory.
    Openapi {
        #[arg(long, default_value = "openapi")]
        out: PathBuf,
    },
    /// Sign an RS256 JWT for the NanoMQ API's `auth_type = "jwt"` mode; prints it.
    NanomqToken {
        /// PEM file of the RSA private key.
        #[arg(long)]
        key: PathBuf,
        /// Issuer; NanoMQ requires the base name of its public key file.
        #[arg(long)]
        issuer: String,
        /// Seconds until the token expires.
        #[arg(long, default_value_t = 3600)]
        lifetime: u64,
    },
}

/// Exit code of a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // colour codes only for a person at a terminal, not in files and log collectors
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Openapi { out } => write_openapi(&out),
        Command::NanomqToken {
            key,
            issuer,
            lifetime,
        } => nanomq_token(&key, &issuer, lifetime),
        Command::CheckConfig => match Config::load(cli.config.as_deref()) {
            Ok(c) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c).expect("config serialises")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mqgate: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run => {
            let config = match Config::load(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("mqgate: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            raise_open_file_limit();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(run(config))
        }
    }
}

fn nanomq_token(key: &std::path::Path, issuer: &str, lifetime: u64) -> ExitCode {
    let pem = match std::fs::read(key) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("mqgate: {}: {e}", key.display());
            return ExitCode::FAILURE;
        }
    };
    match mqgate_nanomq::sign_token(&pem, issuer, lifetime) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mqgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    let mut gateway = match Gateway::start(config).await {
        Ok(g) => g,
        Err(e @ StartError::Config(_)) => {
            eprintln!("mqgate: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("mqgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            gateway.shutdown().await;
        }
        _ = gateway.stopped() => tracing::info!("stopped"),
    }
    ExitCode::SUCCESS
}

/// Every connection is a file: the soft limit (often 1,024) would stop MQTT
/// and HTTP alike long before `mqtt.max_connections`, so the process takes the
/// hard limit it is allowed and says so.
#[cfg(unix)]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!("cannot read the open-file limit: {e}");
        return;
    }
    let soft = limit.rlim_cur;
    if soft < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            let e = std::io::Error::last_os_error();
            tracing::warn!("open-file limit {soft}: cannot raise it: {e}");
            return;
        }
    }
    tracing::info!(
        "open-file limit {} (was {soft}, hard limit {})",
        limit.rlim_cur,
        limit.rlim_max
    );
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn write_openapi(out: &std::path::Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("mqgate: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    for (name, json) in mqgate::openapi::documents() {
        let path = out.join(name);
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("mqgate: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
