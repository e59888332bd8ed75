"""Pure seminar rules and the workbook's shape: no I/O, imported by storage and the bot."""
