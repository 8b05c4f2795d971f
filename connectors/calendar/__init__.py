"""Calendar feeds: fetch an iCalendar feed safely, expand it into occurrences."""
