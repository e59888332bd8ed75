"""The spreadsheet backends: the .xlsx workbook and Google Sheets, and their tools."""
