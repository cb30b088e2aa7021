"""Province profiles of the certificate number rule, as TOML data files (one per province)."""
