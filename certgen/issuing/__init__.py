"""Issuing: one certificate (issuer), batches from rosters, reports, printing jobs."""
