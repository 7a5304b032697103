-- Each tenant's settings changes (issue 16): the whole settings after each change, who made it
-- and when, as the JSON of a `SettingsChange`. The latest version is in force; the earlier ones
-- are the history.
CREATE TABLE tenant_settings (
    tenant text NOT NULL,
    version bigint NOT NULL,
    change text NOT NULL,
    PRIMARY KEY (tenant, version)
);
