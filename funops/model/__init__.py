"""The schema of a funops repo: pydantic models are its single source (`funops schema` exports it)."""
