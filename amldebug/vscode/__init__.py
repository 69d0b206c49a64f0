"""VS Code's files: JSON with comments merged in place, keeping the user's entries and
comments (jsonc)."""

from .jsonc import (  # noqa: F401 (the package's API)
    KINDS,
    build_attach_config,
    build_task,
    config_name,
    folder_lock,
    lock_path,
    merge_entry,
    parse_jsonc,
    read_config_file,
    remove_config,
    remove_entry,
    write_config_file,
    write_config_files,
)
