"""The demo generator's word banks: invented titles, episode names, notes, comments and reviews."""

# Word banks. Titles are assembled from these, so a larger scale stays unique; the curated
# titles below come first so every scale has accents, hyphens, '&' and shared words to search.

ADJECTIVES = (
    "Silent", "Crimson", "Last", "Broken", "Golden", "Hidden", "Midnight", "Iron", "Velvet",
    "Frozen", "Burning", "Distant", "Hollow", "Electric", "Wild", "Lonely", "Savage", "Quiet",
    "Endless", "Shattered", "Forgotten", "Northern", "Scarlet", "Glass", "Paper", "Copper",
    "Secret", "Lost", "Bright", "Dark", "Final", "Little", "Long", "Blue", "Black", "White",
    "Silver", "Wicked", "Gentle", "Restless", "Sleeping", "Falling", "Rising", "Eternal", "Pale",
    "Stolen", "Sacred", "Bitter", "Sweet", "Cold", "Strange", "Perfect", "Dangerous", "Invisible",
    "Infinite", "Empty", "Neon", "Amber", "Wandering", "Fearless",
)
NOUNS = (
    "Harbor", "Kingdom", "Summer", "Winter", "River", "Garden", "Signal", "Empire", "Horizon",
    "Machine", "Orchard", "Frontier", "Lighthouse", "Circus", "Station", "Mirror", "Forest",
    "Island", "Valley", "Storm", "Shadow", "Echo", "Crown", "Tide", "Hours", "Season", "Road",
    "City", "Ocean", "Mountain", "Desert", "Engine", "Witness", "Stranger", "Detective", "Outlaw",
    "Sisters", "Brothers", "Daughter", "Prophet", "Orbit", "Comet", "Planet", "Moon", "Star",
    "Heart", "Ghost", "Wolf", "Raven", "Fox", "Tiger", "Dragon", "Falcon", "Serpent", "Hunter",
    "Pilot", "Dancer", "Thief", "King", "Queen", "Letter", "Promise", "Silence", "Memory", "Fire",
    "Rain", "Snow", "Wind", "Bridge", "Tower", "Castle", "Village", "Hotel", "Café", "Carnival",
    "Symphony", "Requiem", "Lullaby", "Frontera", "Ballad",
)
NAMES = (
    "Amélie", "Élodie", "Zoë", "Chloé", "José", "Renée", "Björn", "Søren", "Inés", "Noémie",
    "François", "Mateo", "Clara", "Oscar", "Hugo", "Marguerite", "Jonah", "Ada", "Felix", "Iris",
    "Leo", "Nina", "Tomás", "Dagny", "Océane", "Anaïs", "Raphaël", "Maëlle", "Jürgen", "Łucja",
)
HYPHENATED = (
    "Spider-Moth", "Wolf-Boy", "Ant-Queen", "Hawk-Eye", "X-Ray", "Half-Light", "Sky-High",
    "Ex-Wife", "Re-Entry", "Non-Stop", "Double-Cross", "Cross-Fire", "Tell-Tale", "Star-Crossed",
    "Moon-Walker", "Iron-Heart", "Night-Shift", "Free-Fall", "Far-Away", "Road-Runner",
)
ROMAN = ("II", "III", "IV")

# (title, year, kind) that every scale contains, so search can be tested on known words.
CURATED_MOVIES = (
    ("Amélie of the Rooftops", 2003), ("Élodie", 2011), ("Spider-Moth", 2019),
    ("Spider-Moth: Into the Web", 2022), ("Café Lumière", 2014), ("Noël in Paris", 2016),
    ("The Last Harbor", 2015), ("Last Harbor Rising", 2020), ("Señora Azul", 2018),
    ("Zoë and the Machine", 2021), ("X-Ray Summer", 1998), ("Björn's Winter", 2009),
    ("Salt & Smoke", 2017), ("Half-Light", 2005), ("The Silent Orchard", 1994),
)
CURATED_SHOWS = (
    ("The Harbor", 2014), ("Chloé's Kitchen", 2017), ("Iron-Heart", 2021),
    ("Midnight Station", 2010), ("Les Étoiles", 2019), ("Spider-Moth: The Animated Series", 2023),
)

EPISODE_WORDS = ("Pilot", "Homecoming", "Exit Strategy", "The Long Night", "Crossroads",
                  "Ghosts", "Reunion", "The Reckoning", "Fault Lines", "Undertow", "Checkmate",
                  "Threshold", "Blackout", "Aftermath", "Inheritance", "Safe Harbor")
LOCATIONS = ("Lisbon, Portugal", "Montréal, Canada", "Bergen, Norway", "Valparaíso, Chile")
WATCHLIST_NOTES = (
    "Recommended by Inês", "Watch before the sequel comes out", "Trailer looked great",
    "For a rainy Sunday", "Everyone at work keeps talking about it", "Director's cut if possible",
    "Heard the score is amazing", "Finish season 1 first",
)
LIST_NOTES = ("Still holds up", "The ending!", "Comfort watch", "Best soundtrack on the list",
               "Rewatch every winter", "Underrated")
SHORT_COMMENTS = (
    "Absolutely loved the atmosphere in this one. The score carries every scene.",
    "Solid but a little too long; the middle act drags before a great finale.",
    "Not my thing, but I can see why people adore it.",
    "Rewatched it with friends and it was even better the second time.",
    "The cast has incredible chemistry. Can't wait for more.",
    "Beautifully shot. Some of the best cinematography I have seen this year.",
)
REVIEW_SENTENCES = (
    "What surprised me most was how patient the storytelling is, letting small moments breathe.",
    "The lead performance is restrained and precise, and it anchors everything around it.",
    "Visually it is stunning: every frame looks like a painting, with colour doing half the work.",
    "The supporting cast gets real arcs instead of serving the plot, which is rare.",
    "My only complaint is the pacing in the second half, where a subplot goes nowhere.",
    "The soundtrack deserves its own review; it is used sparingly and always lands.",
    "It rewards a second viewing, because the early scenes mean something different later.",
    "Dialogue is sharp without being showy, and the humour never undercuts the stakes.",
    "By the final act I was completely invested, and the ending earns its emotion.",
    "Overall a confident, memorable piece of work that I will keep recommending.",
)
SPOILERS = (
    "[spoiler]I did not see the twist with the lighthouse keeper coming at all.[/spoiler]",
    "[spoiler]Killing off the mentor halfway through was a brave choice that paid off.[/spoiler]",
    "[spoiler]The final scene reveals the whole story was told by the daughter.[/spoiler]",
)
RATING_WEIGHTS = (1, 1, 2, 3, 5, 9, 16, 22, 18, 10)

# Trakt's genre slugs, and where a title was made and in which language (ISO 3166 / 639 codes as
# Trakt's `extended=full` gives them), for the insights' genres, countries and languages.
MOVIE_GENRES = (
    "drama", "comedy", "thriller", "action", "romance", "crime", "science-fiction", "horror",
    "adventure", "mystery", "fantasy", "animation", "family", "documentary", "history", "war",
    "music", "western",
)
SHOW_GENRES = (
    "drama", "comedy", "crime", "mystery", "science-fiction", "fantasy", "thriller", "animation",
    "documentary", "family", "reality", "action", "romance", "history",
)
# (country, language), the first ones most likely.
ORIGINS = (
    ("us", "en"), ("us", "en"), ("us", "en"), ("gb", "en"), ("gb", "en"), ("fr", "fr"), ("ca", "en"),
    ("de", "de"), ("jp", "ja"), ("kr", "ko"), ("es", "es"), ("se", "sv"), ("it", "it"), ("dk", "da"),
    ("au", "en"), ("mx", "es"),
)
