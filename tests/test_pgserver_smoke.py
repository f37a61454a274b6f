from sqlalchemy import create_engine, text


def test_server_answers(pg_db):
    engine = create_engine(f"postgresql+psycopg://{pg_db['username']}@{pg_db['host']}:{pg_db['port']}/{pg_db['database']}")
    with engine.connect() as conn:
        assert conn.execute(text("select 1 + 1")).scalar() == 2
    engine.dispose()
