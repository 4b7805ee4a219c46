"""Image sources behind one small interface (`base`): local files (`local`) and HTTP services
(`openaerialmap`, `google_streetview`, `mapillary`, `xyz`), sharing `http.HttpClient` for rate
limiting, retries with back-off, the on-disk cache and content checks."""
