"""Test-only engines and process helpers shared by Roost's runtime and chaos tests."""
