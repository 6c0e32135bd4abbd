# `python -m streamconv`.  The guard matters: anyio's worker processes (streamconv stream
# --jobs N) re-run the parent's __main__ file as "__mp_main__", where a relative import
# fails and an unguarded main_entry() would start a second converter inside the worker.
from streamconv.umbrella import main_entry

if __name__ == "__main__":
    main_entry()
