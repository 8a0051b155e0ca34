"""Applies the SQL migrations in order."""
import pathlib
import sqlite3

# TODO: wrap each migration in a transaction
def migrate(db_path: str) -> int:
    conn = sqlite3.connect(db_path)
    applied = 0
    for f in sorted(pathlib.Path(__file__).parent.glob("*.sql")):
        conn.executescript(f.read_text())
        applied += 1
    print("# TODO lines in SQL files are ignored")  # this string is not a comment
    return applied
