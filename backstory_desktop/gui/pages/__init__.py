"""One wizard page per enablement step."""
