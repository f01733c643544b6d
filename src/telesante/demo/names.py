"""Small lists of French (and Breton) names and birth places for synthetic patients.

Names are written as people write them (accents, hyphens, apostrophes); the patient schemas turn them into
the INS form (capitals, no diacritics). Used by the demo seed and by ``bench.patient_search``.
"""

from __future__ import annotations

FAMILY_NAMES = (
    "Le Gall",
    "Le Goff",
    "Tanguy",
    "Morvan",
    "Guéguen",
    "Le Roux",
    "Kerbrat",
    "Jaouen",
    "Hamon",
    "Riou",
    "Prigent",
    "Le Bris",
    "Cadiou",
    "Le Corre",
    "Le Floc'h",
    "Quéré",
    "Guillou",
    "Le Moal",
    "Péron",
    "Caradec",
    "Le Bihan",
    "Kervella",
    "Le Meur",
    "Salaün",
    "Derrien",
    "Le Hir",
    "Nédélec",
    "Bréhier",
    "Lozac'h",
    "Raoul",
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Marie",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Benali",
    "Nguyen",
    "Da Silva",
    "Ferreira",
    "Haddad",
    "Diallo",
)

FEMALE_GIVEN_NAMES = (
    "Marie",
    "Anne",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Françoise",
    "Monique",
    "Jeanne",
    "Yvonne",
    "Odette",
    "Germaine",
    "Maëlle",
    "Léa",
    "Chloé",
    "Emma",
    "Manon",
    "Camille",
    "Inès",
    "Zoé",
    "Gwenaëlle",
    "Nolwenn",
    "Soizic",
    "Katell",
    "Anaïs",
    "Hélène",
    "Élodie",
    "Céline",
    "Sandrine",
    "Véronique",
    "Brigitte",
    "Josiane",
    "Rozenn",
    "Solène",
    "Marie-Thérèse",
    "Anne-Sophie",
    "Louise",
    "Jade",
    "Alice",
    "Lina",
)

MALE_GIVEN_NAMES = (
    "Jean",
    "Pierre",
    "Michel",
    "André",
    "Philippe",
    "Alain",
    "Bernard",
    "Jacques",
    "Yves",
    "René",
    "Louis",
    "Joseph",
    "Hervé",
    "Yann",
    "Erwan",
    "Ronan",
    "Gaël",
    "Loïc",
    "Maël",
    "Tristan",
    "Corentin",
    "Lucas",
    "Hugo",
    "Théo",
    "Nathan",
    "Mathis",
    "Kévin",
    "Sébastien",
    "Jérôme",
    "Frédéric",
    "Stéphane",
    "Goulven",
    "Tanguy",
    "Gwenaël",
    "Jean-Pierre",
    "Jean-Yves",
    "Paul",
    "Gabriel",
    "Léo",
    "Noé",
)

# INSEE codes (COG) of birth places: mostly Breton communes, a few elsewhere in France, a few abroad (99xxx).
BRETON_COMMUNES = (
    "35238",  # Rennes
    "22278",  # Saint-Brieuc
    "56260",  # Vannes
    "29232",  # Quimper
    "35288",  # Saint-Malo
    "56121",  # Lorient
    "22113",  # Lannion
    "35115",  # Fougères
    "56178",  # Pontivy
    "29019",  # Brest
    "22093",  # Lamballe-Armor
    "35360",  # Vitré
    "22050",  # Dinan
    "29103",  # Landerneau
    "56007",  # Auray
    "35047",  # Bruz
)
OTHER_FRENCH_COMMUNES = (
    "75115",  # Paris 15e
    "69123",  # Lyon
    "13055",  # Marseille
    "44109",  # Nantes
)
FOREIGN_BIRTH_PLACES = (
    "99350",  # Maroc
    "99352",  # Algérie
    "99109",  # Allemagne
    "99132",  # Royaume-Uni
    "99139",  # Portugal
)
