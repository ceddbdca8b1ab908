//! `pole-ods token --role ROLE [--council CODE] [--agreement NAME] [--ttl DUR]`: mints a
//! development token signed with this deployment's HS256 secret and prints it alone.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use pole_auth::{Principal, Role};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// admin, analyst, council, consumer or auditor
    #[arg(long)]
    pub role: String,
    /// The council a `council` token acts for (or that narrows an analyst's scope)
    #[arg(long, value_name = "CODE")]
    pub council: Option<String>,
    /// The data-sharing agreement a `consumer` token reads under
    #[arg(long, value_name = "NAME")]
    pub agreement: Option<String>,
    /// The purpose a consumer declares [default: the agreement's]
    #[arg(long)]
    pub purpose: Option<String>,
    /// The subject (`sub`) [default: the role's name]
    #[arg(long)]
    pub subject: Option<String>,
    /// How long the token lasts: seconds, or a number with s, m, h or d
    #[arg(long, default_value = "8h", value_name = "DUR")]
    pub ttl: String,
}

/// `90`, `90s`, `15m`, `8h`, `7d` in seconds (at most 366 days).
pub fn parse_ttl(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("--ttl {text}: unknown unit {other:?} (use s, m, h or d)"),
    };
    let n: i64 = number.parse().map_err(|_| anyhow::anyhow!("--ttl {text}: expected a number with s, m, h or d"))?;
    let secs = n.saturating_mul(scale);
    if !(1..=366 * 86_400).contains(&secs) {
        bail!("--ttl {text}: must be between 1 second and 366 days");
    }
    Ok(secs)
}

pub fn run(config: &Config, args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let role: Role = args.role.parse().map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
    let ttl = parse_ttl(&args.ttl)?;
    let mut purpose = args.purpose.clone();
    if let Some(name) = &args.agreement {
        if role != Role::Consumer {
            bail!("--agreement is for consumer tokens");
        }
        let schema = crate::pack::load(config.schema_pack.as_deref())?;
        let agreements = crate::access::agreements(config, &schema)?;
        let Some(agreement) = agreements.get(name) else {
            let known: Vec<&str> = agreements.names().collect();
            bail!("--agreement {name}: no such agreement (known: {})", known.join(", "));
        };
        purpose.get_or_insert_with(|| agreement.purpose.clone());
    }
    let principal = Principal {
        subject: args.subject.clone().unwrap_or_else(|| role.to_string()),
        role,
        council: args.council.clone(),
        agreement: args.agreement.clone(),
        purpose,
        exp: None,
    };
    let token = crate::access::mint(config, &principal, ttl)?;
    if config.json {
        crate::output::print_json(&serde_json::json!({ "token": token, "role": role, "expires_in": ttl }))?;
    } else {
        println!("{token}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn durations_read_in_every_unit() {
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("15m").unwrap(), 900);
        assert_eq!(parse_ttl("8h").unwrap(), 28_800);
        assert_eq!(parse_ttl("7d").unwrap(), 604_800);
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("999d").is_err());
    }
}
