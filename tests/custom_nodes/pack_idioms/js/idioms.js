// pack_idioms: served from a folder the pack put into nodes.EXTENSION_WEB_DIRS at import time.
export const packIdiomsLoaded = true;
