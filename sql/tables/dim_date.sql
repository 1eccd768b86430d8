-- One row per calendar day from the earliest event or as-of date in the warehouse to the latest.
CREATE TABLE IF NOT EXISTS dim_date (
    date_day DATE NOT NULL PRIMARY KEY, -- The calendar day: join fct_*.ordered_date / opened_date / responded_date and *.as_of_date to it
    year_number SMALLINT NOT NULL, -- Calendar year
    quarter_number SMALLINT NOT NULL, -- Calendar quarter, 1-4
    month_number SMALLINT NOT NULL, -- Calendar month, 1-12
    month_name VARCHAR NOT NULL, -- English month name, e.g. December
    month_start_date DATE NOT NULL, -- First day of the month: group by it for monthly figures
    iso_year_number SMALLINT NOT NULL, -- ISO 8601 week-numbering year (differs from year_number in the days around New Year)
    iso_week_number SMALLINT NOT NULL, -- ISO 8601 week of iso_year_number, 1-53
    iso_day_of_week SMALLINT NOT NULL, -- ISO day of the week, 1 = Monday to 7 = Sunday
    day_name VARCHAR NOT NULL, -- English day name, e.g. Monday
    is_weekend BOOLEAN NOT NULL -- True on Saturday and Sunday
)
