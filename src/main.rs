//! The `akaid` binary: parse the command line, load the configuration, start logging,
//! dispatch. The only place `anyhow` is used.

use std::io::Write;

use anyhow::Context as _;
use clap::Parser;

use akaid::cli::{
    self, Cli, ClientCommand, Command, HssCommand, KeysCommand, NafCommand, RealmCommand,
    SubscriberCommand, UeCommand,
};
use akaid::config::{Config, LogFormat};
use akaid::context::Context;

/// mimalloc instead of the system allocator: a login allocates and frees a few hundred small
/// buffers (headers, query fields, JSON), and glibc's malloc showed as a tenth of the server's
/// CPU time under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn init_tracing(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .with_context(|| format!("log: {:?} is not a valid log filter", config.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), &env, cli.flag_layer())?;
    init_tracing(&config)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Commands that need no database.
    match &cli.command {
        Command::Config => return Ok(cli::config_show(&config, &mut out)?),
        Command::Subscriber(SubscriberCommand::Generate { count, seed }) => {
            return Ok(akaid::hss::generate::write_csv(&mut out, seed, *count)?);
        }
        Command::Ue(UeCommand::Bootstrap(args)) => {
            return Ok(cli::ue_bootstrap(args, &mut out).await?);
        }
        Command::Ue(UeCommand::Bench(args)) => return Ok(cli::ue_bench(args, &mut out).await?),
        Command::Ue(UeCommand::Login(args)) => return Ok(cli::ue_login(args, &mut out).await?),
        Command::Ue(UeCommand::Proxy(args)) => return Ok(cli::ue_proxy(args, &mut out).await?),
        Command::Demo(args) => {
            return Ok(cli::demo(&config, args, cli.data_dir.as_deref(), &mut out).await?);
        }
        _ => {}
    }
    if let Command::Serve(_) = &cli.command {
        // Before the database is touched: a refused start changes nothing.
        akaid::web::check_public_url(&config)?;
    }
    let ctx = Context::open(config, &env).await?;
    match &cli.command {
        Command::Serve(_) => {
            drop(out);
            akaid::web::serve(ctx).await?;
        }
        // Handled above, before the database was opened.
        Command::Config | Command::Ue(_) | Command::Demo(_) => {}
        Command::Naf(naf) => match naf {
            NafCommand::Add { fqdn, json } => cli::naf_add(&ctx, fqdn, *json, &mut out).await?,
            NafCommand::List => cli::naf_list(&ctx, &mut out).await?,
            NafCommand::Remove { fqdn } => cli::naf_remove(&ctx, fqdn, &mut out).await?,
        },
        Command::Realm(realm) => match realm {
            RealmCommand::Allow {
                realm,
                stable_identifier,
            } => {
                let policy = akaid::store::RealmPolicy::Allow;
                cli::realm_set(&ctx, realm, policy, *stable_identifier, &mut out).await?
            }
            RealmCommand::Prompt {
                realm,
                stable_identifier,
            } => {
                let policy = akaid::store::RealmPolicy::Prompt;
                cli::realm_set(&ctx, realm, policy, *stable_identifier, &mut out).await?
            }
            RealmCommand::Deny { realm } => {
                let policy = akaid::store::RealmPolicy::Deny;
                cli::realm_set(&ctx, realm, policy, false, &mut out).await?
            }
            RealmCommand::List => cli::realm_list(&ctx, &mut out).await?,
            RealmCommand::Remove { realm } => cli::realm_remove(&ctx, realm, &mut out).await?,
        },
        Command::Migrate => writeln!(out, "database schema is up to date")?,
        Command::Client(client) => match client {
            ClientCommand::Add(args) => cli::client_add(&ctx, args, &mut out).await?,
            ClientCommand::List => cli::client_list(&ctx, &mut out).await?,
            ClientCommand::Show { client_id, json } => {
                cli::client_show(&ctx, client_id, *json, &mut out).await?;
            }
            ClientCommand::Remove { client_id } => {
                cli::client_remove(&ctx, client_id, &mut out).await?;
            }
        },
        Command::Keys(keys) => match keys {
            KeysCommand::Rotate { alg } => cli::keys_rotate(&ctx, *alg, &mut out).await?,
            KeysCommand::List { json } => cli::keys_list(&ctx, *json, &mut out).await?,
        },
        Command::Subscriber(sub) => match sub {
            SubscriberCommand::Generate { .. } => {}
            SubscriberCommand::Add(args) => cli::subscriber_add(&ctx, args, &mut out).await?,
            SubscriberCommand::Import { file } => {
                cli::subscriber_import(&ctx, file, &mut out).await?;
            }
            SubscriberCommand::List => cli::subscriber_list(&ctx, &mut out).await?,
            SubscriberCommand::Show { impi, json } => {
                cli::subscriber_show(&ctx, impi, *json, &mut out).await?;
            }
            SubscriberCommand::Remove { impi } => {
                cli::subscriber_remove(&ctx, impi, &mut out).await?;
            }
            SubscriberCommand::Profile {
                impi,
                set,
                unset,
                json,
            } => cli::subscriber_profile(&ctx, impi, set, unset, *json, &mut out).await?,
        },
        Command::Hss(hss) => match hss {
            HssCommand::Vector { impi, rand, json } => {
                cli::hss_vector(&ctx, impi, rand.as_deref(), *json, &mut out).await?;
            }
            HssCommand::Resync {
                impi,
                rand,
                auts,
                json,
            } => cli::hss_resync(&ctx, impi, rand, auts, *json, &mut out).await?,
        },
    }
    Ok(())
}
