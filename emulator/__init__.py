"""A local Google Sheets API v4 emulator for tests, the benchmark and development."""
