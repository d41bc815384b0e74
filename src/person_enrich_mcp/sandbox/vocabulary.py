"""Word lists for the synthetic dataset. Every name here is invented or generic; none describes a real person."""

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Priya", "Amara", "Liam", "Sofia", "Mateo", "Chen", "Aisha", "Noah", "Yuki", "Olu", "Ingrid", "Ravi", "Elena",
    "Kwame", "Hana", "Diego", "Fatima", "Lars", "Mei", "Tomas", "Zara", "Jonas", "Leila", "Arjun", "Nadia", "Felix",
    "Imani", "Kenji", "Lucia", "Omar", "Freya", "Rohan", "Sana", "Bruno", "Ayla", "Emeka", "Clara", "Hugo", "Ines",
    "Ivan", "Jade", "Kofi", "Lena", "Marco", "Nia", "Oscar", "Paula", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yara", "Zane", "Anya", "Bilal", "Carmen", "Dev", "Esme", "Farid", "Greta", "Hiro", "Isla",
    "Jamal", "Kira", "Luca", "Maya", "Nikhil", "Olga", "Pedro", "Rania", "Sven", "Talia", "Ugo", "Vikram", "Wren",
    "Yusuf",
)
LAST_NAMES: tuple[str, ...] = (
    "Raman", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Silva", "Kowalski", "Mensah", "Ibarra",
    "Sato", "Petrov", "Nakamura", "Oyelaran", "Fischer", "Duarte", "Kaur", "Berg", "Castillo", "Achebe", "Larsen",
    "Rossi", "Vasquez", "Chandra", "Dubois", "Eriksen", "Farouk", "Gallo", "Hoang", "Iyer", "Jensen", "Keller",
    "Lopez", "Mbeki", "Nguyen", "Ortiz", "Park", "Quist", "Reyes", "Sharma", "Toivonen", "Ueda", "Varga", "Weber",
    "Xu", "Yilmaz", "Zhou", "Abara", "Brandt", "Costa", "Delgado", "Ekwueme", "Fontaine", "Grieve", "Holm", "Ishikawa",
    "Jovanovic", "Kang", "Lund", "Marsh", "Nair", "Olsen", "Pham", "Quiroga", "Rahman", "Stein", "Tran", "Uddin",
    "Valdez", "Wolfe", "Yamada", "Zeller", "Adeyemi", "Bianchi", "Cruz", "Dahl", "Engel",
)
COMPANY_PREFIXES: tuple[str, ...] = (
    "Northwind", "Bluefin", "Cobalt", "Driftwood", "Ember", "Foxglove", "Granite", "Harborline", "Ironleaf", "Juniper",
    "Kestrel", "Lumen", "Meridian", "Nimbus", "Oakridge", "Pinecone", "Quartzite", "Redwater", "Silverline",
    "Tidewater", "Umbra", "Vantage", "Willowby", "Xylem", "Yellowpine", "Zephyr", "Amberly", "Brightwater",
    "Cedarpoint", "Duskfall", "Evergrove", "Fernhill", "Glasswing", "Highpeak", "Indigo", "Jasperline", "Kiteline",
    "Larkspur", "Moonstone", "Northgate",
)
# suffix, industry, optional second industry
COMPANY_SUFFIXES: tuple[tuple[str, str, str], ...] = (
    ("Labs", "Software Development", "Technology, Information and Internet"),
    ("Analytics", "Data Infrastructure and Analytics", "Software Development"),
    ("Systems", "IT Services and IT Consulting", ""),
    ("Health", "Hospitals and Health Care", "Wellness and Fitness Services"),
    ("Robotics", "Automation Machinery Manufacturing", ""),
    ("Logistics", "Transportation, Logistics, Supply Chain and Storage", ""),
    ("Capital", "Financial Services", "Venture Capital and Private Equity Principals"),
    ("Energy", "Renewable Energy Power Generation", ""),
    ("Foods", "Food and Beverage Manufacturing", ""),
    ("Media", "Online Audio and Video Media", "Advertising Services"),
    ("Software", "Software Development", ""),
    ("Bio", "Biotechnology Research", "Pharmaceutical Manufacturing"),
    ("Networks", "Telecommunications", ""),
    ("Studio", "Design Services", ""),
    ("Partners", "Business Consulting and Services", ""),
)
# Weighted: most companies are privately held.
COMPANY_TYPES: tuple[str, ...] = (
    "Privately Held", "Privately Held", "Privately Held", "Privately Held", "Privately Held", "Privately Held",
    "Public Company", "Public Company", "Nonprofit", "Partnership", "Self-Employed",
)
# city, state, country, continent, ISO-3 country code, raw region label
PLACES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("San Francisco", "California", "United States", "North America", "USA", "San Francisco Bay Area"),
    ("New York", "New York", "United States", "North America", "USA", "New York City Metropolitan Area"),
    ("Austin", "Texas", "United States", "North America", "USA", "Austin, Texas Metropolitan Area"),
    ("Seattle", "Washington", "United States", "North America", "USA", "Greater Seattle Area"),
    ("Chicago", "Illinois", "United States", "North America", "USA", "Greater Chicago Area"),
    ("Boston", "Massachusetts", "United States", "North America", "USA", "Greater Boston"),
    ("Denver", "Colorado", "United States", "North America", "USA", "Denver Metropolitan Area"),
    ("Toronto", "Ontario", "Canada", "North America", "CAN", "Greater Toronto Area"),
    ("Vancouver", "British Columbia", "Canada", "North America", "CAN", "Greater Vancouver"),
    ("Mexico City", "Mexico City", "Mexico", "North America", "MEX", "Mexico City Metropolitan Area"),
    ("Sao Paulo", "Sao Paulo", "Brazil", "South America", "BRA", "Sao Paulo, Brazil"),
    ("Buenos Aires", "Buenos Aires", "Argentina", "South America", "ARG", "Greater Buenos Aires"),
    ("London", "England", "United Kingdom", "Europe", "GBR", "Greater London"),
    ("Manchester", "England", "United Kingdom", "Europe", "GBR", "Greater Manchester"),
    ("Berlin", "Berlin", "Germany", "Europe", "DEU", "Berlin Metropolitan Area"),
    ("Munich", "Bavaria", "Germany", "Europe", "DEU", "Munich, Bavaria"),
    ("Paris", "Ile-de-France", "France", "Europe", "FRA", "Paris and Surrounding Area"),
    ("Amsterdam", "North Holland", "Netherlands", "Europe", "NLD", "Amsterdam Area"),
    ("Stockholm", "Stockholm County", "Sweden", "Europe", "SWE", "Stockholm Metropolitan Area"),
    ("Warsaw", "Masovia", "Poland", "Europe", "POL", "Warsaw Metropolitan Area"),
    ("Lagos", "Lagos", "Nigeria", "Africa", "NGA", "Lagos State"),
    ("Nairobi", "Nairobi County", "Kenya", "Africa", "KEN", "Nairobi County"),
    ("Cape Town", "Western Cape", "South Africa", "Africa", "ZAF", "Cape Town Metropolitan Area"),
    ("Dubai", "Dubai", "United Arab Emirates", "Asia", "ARE", "Dubai, United Arab Emirates"),
    ("Bengaluru", "Karnataka", "India", "Asia", "IND", "Bengaluru, Karnataka"),
    ("Chennai", "Tamil Nadu", "India", "Asia", "IND", "Chennai, Tamil Nadu"),
    ("Singapore", "Singapore", "Singapore", "Asia", "SGP", "Singapore"),
    ("Tokyo", "Tokyo", "Japan", "Asia", "JPN", "Tokyo, Japan"),
    ("Seoul", "Seoul", "South Korea", "Asia", "KOR", "Seoul Capital Area"),
    ("Sydney", "New South Wales", "Australia", "Oceania", "AUS", "Greater Sydney Area"),
)
LANGUAGES: tuple[str, ...] = (
    "Spanish", "French", "German", "Hindi", "Tamil", "Mandarin", "Japanese", "Portuguese", "Arabic", "Swahili",
    "Yoruba", "Polish", "Swedish", "Turkish", "Korean", "Dutch",
)
# function category -> (role noun, area, chief title, skills)
FUNCTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "Engineering": (
        "Software Engineer",
        "Engineering",
        "CTO",
        (
            "Python", "Go", "Rust", "TypeScript", "SQL", "Distributed Systems", "Kubernetes", "Cloud Infrastructure",
            "API Design", "Machine Learning", "Data Engineering", "DevOps",
        ),
    ),
    "Sales": (
        "Account Executive",
        "Sales",
        "CRO",
        (
            "Enterprise Sales", "Negotiation", "CRM", "Lead Generation", "Account Management", "Solution Selling",
            "Sales Operations", "Forecasting",
        ),
    ),
    "Consulting": (
        "Consultant",
        "Consulting",
        "Chief Consulting Officer",
        (
            "Management Consulting", "Change Management", "Stakeholder Management", "Business Analysis",
            "Process Improvement", "Due Diligence",
        ),
    ),
    "Marketing": (
        "Marketing Specialist",
        "Marketing",
        "CMO",
        (
            "Content Marketing", "SEO", "Brand Strategy", "Demand Generation", "Marketing Automation",
            "Product Marketing", "Copywriting",
        ),
    ),
    "Operations": (
        "Operations Analyst",
        "Operations",
        "COO",
        (
            "Supply Chain Management", "Logistics", "Process Optimization", "Vendor Management", "Lean Six Sigma",
            "Procurement",
        ),
    ),
    "Finance": (
        "Financial Analyst",
        "Finance",
        "CFO",
        ("Financial Modeling", "FP&A", "Accounting", "Budgeting", "Corporate Finance", "Risk Management", "Treasury"),
    ),
    "Research": (
        "Research Scientist",
        "Research",
        "Chief Scientist",
        (
            "Statistics", "Experimental Design", "Bioinformatics", "Data Analysis", "Scientific Writing",
            "Deep Learning", "R",
        ),
    ),
    "Customer Success and Support": (
        "Customer Success Manager",
        "Customer Success",
        "Chief Customer Officer",
        (
            "Customer Retention", "Onboarding", "Technical Support", "Customer Experience", "Escalation Management",
            "Renewals",
        ),
    ),
    "Arts and Design": (
        "Product Designer",
        "Design",
        "Chief Design Officer",
        (
            "User Experience Design", "Interaction Design", "Figma", "Illustration", "Design Systems", "User Research",
            "Typography",
        ),
    ),
    "Human Resources": (
        "HR Generalist",
        "People",
        "CHRO",
        (
            "Talent Acquisition", "Employee Relations", "Compensation and Benefits", "Recruiting",
            "Performance Management", "HR Policies",
        ),
    ),
    "Legal": (
        "Legal Counsel",
        "Legal",
        "General Counsel",
        ("Contract Negotiation", "Corporate Law", "Compliance", "Intellectual Property", "Privacy Law", "Litigation"),
    ),
    "Product Management": (
        "Product Manager",
        "Product",
        "CPO",
        ("Product Strategy", "Roadmapping", "Agile Methodologies", "User Stories", "A/B Testing", "Product Analytics"),
    ),
}
GENERAL_SKILLS: tuple[str, ...] = (
    "Leadership", "Public Speaking", "Project Management", "Team Building", "Strategic Planning", "Mentoring",
    "Cross-functional Collaboration",
)
# seniority level -> title templates over {noun}, {area} and {chief}
TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Entry Level": ("{noun}", "Associate {noun}", "Junior {noun}"),
    "In Training": ("{area} Intern", "{noun} Trainee"),
    "Senior": ("Senior {noun}", "Lead {noun}"),
    "Entry Level Manager": ("{area} Team Lead", "{area} Supervisor"),
    "Experienced Manager": ("{area} Manager", "Senior {area} Manager"),
    "Strategic": ("Principal {noun}", "Staff {noun}"),
    "Director": ("Director of {area}", "Head of {area}"),
    "Vice President": ("VP {area}", "Vice President of {area}"),
    "CXO": ("{chief}",),
    "Owner / Partner": ("Founder", "Co-Founder", "Partner"),
}
# Career-stage weights over SENIORITY_LEVELS, for current and past roles.
SENIORITY_WEIGHTS_CURRENT: tuple[int, ...] = (16, 6, 24, 8, 3, 3, 5, 2, 14, 6)
SENIORITY_WEIGHTS_PAST: tuple[int, ...] = (30, 6, 20, 5, 1, 1, 2, 8, 10, 3)
SCHOOLS: tuple[str, ...] = (
    "Northgate University", "Lakeshore Institute of Technology", "University of Eastbrook", "Westfield College",
    "Riverbend State University", "Harborview University", "Summit Polytechnic", "Crescent Valley University",
    "Pinecrest College of Business", "Ashford School of Design", "Marlowe University", "Kingsbridge University",
    "Silverton Technical University", "Oakhaven College", "Bayside University", "Granite Peak University",
    "Redcliff School of Law", "Elmstead University", "Brookhollow Institute", "Stonegate University",
)
DEGREES: tuple[str, ...] = (
    "Bachelor of Science (B.S.)", "Bachelor of Arts (B.A.)", "Master of Science (M.S.)",
    "Master of Business Administration (MBA)", "Doctor of Philosophy (Ph.D.)", "Bachelor of Engineering (B.E.)",
    "Associate's degree", "Master of Arts (M.A.)", "Juris Doctor (J.D.)", "",
)
FIELDS_OF_STUDY: dict[str, tuple[str, ...]] = {
    "Engineering": ("Computer Science", "Electrical Engineering", "Software Engineering", "Mathematics"),
    "Sales": ("Business Administration", "Communications", "Economics"),
    "Consulting": ("Economics", "Business Administration", "Industrial Engineering"),
    "Marketing": ("Marketing", "Communications", "Psychology"),
    "Operations": ("Industrial Engineering", "Supply Chain Management", "Business Administration"),
    "Finance": ("Finance", "Accounting", "Economics"),
    "Research": ("Biology", "Physics", "Statistics", "Chemistry"),
    "Customer Success and Support": ("Psychology", "Communications", "Business Administration"),
    "Arts and Design": ("Graphic Design", "Fine Arts", "Human-Computer Interaction"),
    "Human Resources": ("Human Resources Management", "Psychology", "Sociology"),
    "Legal": ("Law", "Political Science", "History"),
    "Product Management": ("Computer Science", "Business Administration", "Cognitive Science"),
}
CERTIFICATIONS: tuple[tuple[str, str, str], ...] = (
    ("Certified Cloud Architect", "Cloud Skills Alliance", "CCA"),
    ("Professional Scrum Practitioner", "Agile Guild", "PSP"),
    ("Certified Data Analyst", "Data Practitioners Board", "CDA"),
    ("Project Management Professional", "Project Leadership Institute", "PMP"),
    ("Certified Information Security Analyst", "Security Credential Council", "CISA"),
    ("Certified Financial Modeler", "Finance Standards Board", "CFM"),
    ("Growth Marketing Certificate", "Marketing Craft Academy", "GMC"),
    ("UX Research Certificate", "Design Practice Guild", "UXR"),
)
HONORS: tuple[str, ...] = (
    "Engineering Excellence Award", "President's Club", "Employee of the Year", "Dean's List", "Hackathon Winner",
    "Innovation Award", "Top Performer", "Community Impact Award",
)
SUMMARIES: tuple[str, ...] = (
    "Builds data platforms.", "Helps teams ship reliable software.", "Passionate about customers and growth.",
    "Turning research into products.", "Operator, mentor and lifelong learner.", "Designing calm, useful tools.",
    "Scaling go-to-market teams.", "Making complex things simple.",
)
ROLE_DESCRIPTIONS: tuple[str, ...] = (
    "Leads platform and data teams.", "Owns the regional pipeline.", "Runs quarterly planning.",
    "Built the first version of the product.", "Manages key accounts.", "",
)
# Weighted: most roles are full-time; "" is what real data often has.
EMPLOYMENT_TYPES: tuple[str, ...] = (
    "Full-time", "Full-time", "Full-time", "Full-time", "Full-time", "Full-time", "Full-time", "Full-time",
    "Part-time", "Contract", "",
)
PRONOUNS: tuple[str, ...] = ("she/her", "he/him", "they/them")
# fmt: on
