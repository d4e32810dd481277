"""Policy pack ``rds-proxy-guardrails``; the rules live in :mod:`policy.rules`."""
