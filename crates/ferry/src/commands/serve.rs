//! `ferry serve`, `ferry serve token create|list|revoke`, `ferry audit`.

use ferry_server::auth::{self, Role};
use ferry_server::config;
use ferry_server::store::{AuditEntry, ServerStore};

use crate::cli::{AuditArgs, RoleArg, ServeArgs, ServeCommand, TokenCommand};
use crate::output::{self, BOLD, DIM, Exit, Format, OK, WARNING, paint};

fn load(path: &std::path::Path) -> Result<config::Config, Exit> {
    config::load(path).map_err(|invalid| {
        anstream::eprint!("{}", invalid.render(true));
        output::error(&invalid.to_string());
        Exit::Failed
    })
}

fn store(config: &config::Config) -> Result<ServerStore, Exit> {
    ServerStore::open(&config.state).map_err(|e| {
        output::error(&e.to_string());
        Exit::Failed
    })
}

pub fn run(args: &ServeArgs) -> Exit {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    match &args.command {
        None => serve(config, args.listen),
        Some(ServeCommand::Token(TokenCommand::Create(t))) => {
            let role = match t.role {
                RoleArg::Viewer => Role::Viewer,
                RoleArg::Operator => Role::Operator,
                RoleArg::Approver => Role::Approver,
                RoleArg::Admin => Role::Admin,
            };
            let store = match store(&config) {
                Ok(s) => s,
                Err(exit) => return exit,
            };
            match auth::create(&store, &t.name, role, &t.groups) {
                Ok(token) => {
                    anstream::eprintln!(
                        "{} token `{}` ({role}{}): shown once, keep it secret",
                        paint(OK, "✓"),
                        t.name,
                        if t.groups.is_empty() {
                            String::new()
                        } else {
                            format!(", groups {}", t.groups.join(", "))
                        }
                    );
                    // The last line of standard output, alone, for scripts.
                    anstream::println!("{token}");
                    Exit::Ok
                }
                Err(e) => {
                    output::error(&e.to_string());
                    Exit::Failed
                }
            }
        }
        Some(ServeCommand::Token(TokenCommand::List(l))) => {
            let tokens = match store(&config).map(|s| s.tokens()) {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    output::error(&e.to_string());
                    return Exit::Failed;
                }
                Err(exit) => return exit,
            };
            match l.format {
                Format::Json => output::json(&tokens),
                Format::Text => {
                    if tokens.is_empty() {
                        anstream::println!(
                            "no tokens yet; `ferry serve token create --name NAME --role ROLE` makes one"
                        );
                    }
                    for t in &tokens {
                        let state = match (t.revoked_ms, t.last_used_ms) {
                            (Some(_), _) => paint(WARNING, "revoked"),
                            (None, Some(ms)) => paint(DIM, &format!("last used {}", age(ms))),
                            (None, None) => paint(DIM, "never used"),
                        };
                        anstream::println!(
                            "{:<20} {:<9} {:<24} {state}",
                            t.name,
                            t.role.as_str(),
                            t.groups.join(",")
                        );
                    }
                }
            }
            Exit::Ok
        }
        Some(ServeCommand::Token(TokenCommand::Revoke(r))) => {
            match store(&config).map(|s| s.revoke_token(&r.name)) {
                Ok(Ok(true)) => {
                    anstream::println!("{} token `{}` revoked", paint(OK, "✓"), r.name);
                    Exit::Ok
                }
                Ok(Ok(false)) => {
                    output::error(&format!(
                        "no live token named `{}`; `ferry serve token list` shows them",
                        r.name
                    ));
                    Exit::Failed
                }
                Ok(Err(e)) => {
                    output::error(&e.to_string());
                    Exit::Failed
                }
                Err(exit) => exit,
            }
        }
    }
}

fn serve(config: config::Config, listen: Option<std::net::SocketAddr>) -> Exit {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
    // The server serves many clients and drives many executions: both cores.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::error(&format!("cannot start the runtime: {e}"));
            return Exit::Failed;
        }
    };
    match runtime.block_on(ferry_server::serve(config, listen)) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            output::error(&e.to_string());
            Exit::Failed
        }
    }
}

fn age(ms: i64) -> String {
    let secs = (ferry_engine::model::now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

pub fn audit(args: &AuditArgs) -> Exit {
    let entries: Result<Vec<AuditEntry>, String> = match (&args.config, &args.remote.server) {
        (Some(path), _) => match load(path) {
            Ok(c) => match store(&c) {
                Ok(s) => s.audit_log(args.limit, None).map_err(|e| e.to_string()),
                Err(exit) => return exit,
            },
            Err(exit) => return exit,
        },
        (None, Some(_)) => match super::remote::client(&args.remote) {
            Ok(client) => output::runtime()
                .block_on(client.audit(args.limit))
                .map_err(|e| e.to_string()),
            Err(exit) => return exit,
        },
        (None, None) => {
            output::error("give --config server.yaml (on the server's machine) or --server URL");
            return Exit::Usage;
        }
    };
    let entries = match entries {
        Ok(e) => e,
        Err(e) => {
            output::error(&e);
            return Exit::Failed;
        }
    };
    match args.format {
        Format::Json => output::json(&entries),
        Format::Text => {
            for e in &entries {
                anstream::println!(
                    "{:>6} {} {:<16} {:<9} {:<28} {:<15} {} {}",
                    e.id,
                    paint(DIM, &age(e.at_ms)),
                    e.identity,
                    paint(BOLD, &e.action),
                    e.target,
                    e.client,
                    e.status,
                    e.result
                );
            }
        }
    }
    Exit::Ok
}
