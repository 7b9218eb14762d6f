"""Small shared helpers, each the package's one home for its job: comm.py (rank, world size,
gather), seeding.py (the seed mixer, SEED resolution, RNG state), file_io.py (atomic writes),
errors.py (the user-error types), cli.py (tools' one-line errors), logger.py, env.py,
visualize.py."""
