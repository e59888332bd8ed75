"""Operations: the CLI, check, the scheduler, serving."""
