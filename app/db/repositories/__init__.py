"""All SQL lives here. A repository wraps one session and takes domain arguments."""
