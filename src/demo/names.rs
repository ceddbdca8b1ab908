//! Embedded name lists: given and family names by heritage and era, streets, and the words
//! care providers and homes are named with. All of it is ordinary vocabulary; any
//! resemblance of a generated person or provider to a real one is chance.

/// Broad naming tradition, which also decides the plausible ethnicity codes. Councils differ
/// in their mix, as the populations they serve do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heritage {
    British,
    Irish,
    EasternEuropean,
    SouthAsian,
    BlackAfrican,
    BlackCaribbean,
    Chinese,
    Mixed,
}

/// Given names for people born before 1960 (most adult social care clients) and after.
pub(crate) fn given_names(heritage: Heritage, female: bool, born: i32) -> &'static [&'static str] {
    let older = born < 1960;
    match (heritage, female, older) {
        (Heritage::British | Heritage::Irish | Heritage::Mixed, true, true) => OLDER_FEMALE,
        (Heritage::British | Heritage::Irish | Heritage::Mixed, false, true) => OLDER_MALE,
        (Heritage::British | Heritage::Irish | Heritage::Mixed, true, false) => YOUNGER_FEMALE,
        (Heritage::British | Heritage::Irish | Heritage::Mixed, false, false) => YOUNGER_MALE,
        (Heritage::EasternEuropean, true, _) => EE_FEMALE,
        (Heritage::EasternEuropean, false, _) => EE_MALE,
        (Heritage::SouthAsian, true, _) => SA_FEMALE,
        (Heritage::SouthAsian, false, _) => SA_MALE,
        (Heritage::BlackAfrican, true, _) => AF_FEMALE,
        (Heritage::BlackAfrican, false, _) => AF_MALE,
        (Heritage::BlackCaribbean, true, true) => CA_FEMALE,
        (Heritage::BlackCaribbean, false, true) => CA_MALE,
        (Heritage::BlackCaribbean, true, false) => YOUNGER_FEMALE,
        (Heritage::BlackCaribbean, false, false) => YOUNGER_MALE,
        (Heritage::Chinese, true, _) => CN_FEMALE,
        (Heritage::Chinese, false, _) => CN_MALE,
    }
}

pub(crate) fn family_names(heritage: Heritage) -> &'static [&'static str] {
    match heritage {
        Heritage::British | Heritage::Mixed => BRITISH_FAMILY,
        Heritage::Irish => IRISH_FAMILY,
        Heritage::EasternEuropean => EE_FAMILY,
        Heritage::SouthAsian => SA_FAMILY,
        Heritage::BlackAfrican => AF_FAMILY,
        Heritage::BlackCaribbean => CA_FAMILY,
        Heritage::Chinese => CN_FAMILY,
    }
}

/// Ethnicity codes (national list) with weights. Councils mix the two levels of the list,
/// so top-level codes appear beside detailed ones, and some people are "not stated".
pub(crate) fn ethnicity_codes(heritage: Heritage) -> &'static [(&'static str, u32)] {
    match heritage {
        Heritage::British => &[("A", 88), ("WHITE", 8), ("Z", 3), ("99", 1)],
        Heritage::Irish => &[("B", 85), ("WHITE", 10), ("Z", 5)],
        Heritage::EasternEuropean => &[("C", 85), ("WHITE", 8), ("Z", 7)],
        Heritage::SouthAsian => &[("J", 40), ("H", 30), ("K", 15), ("L", 8), ("ASIAN", 5), ("Z", 2)],
        Heritage::BlackAfrican => &[("N", 80), ("P", 8), ("BLACK", 8), ("Z", 4)],
        Heritage::BlackCaribbean => &[("M", 82), ("P", 6), ("BLACK", 8), ("Z", 4)],
        Heritage::Chinese => &[("R", 85), ("OTHER", 5), ("S", 5), ("Z", 5)],
        Heritage::Mixed => &[("D", 35), ("F", 25), ("E", 15), ("G", 15), ("MIXED", 10)],
    }
}

const OLDER_FEMALE: &[&str] = &[
    "Margaret", "Dorothy", "Joan", "Patricia", "Jean", "Barbara", "Doreen", "Eileen", "Irene", "Mary",
    "Betty", "Brenda", "Sheila", "Elsie", "Edna", "Joyce", "Iris", "Gladys", "Hilda", "Vera", "Kathleen",
    "Pauline", "Maureen", "Christine", "Valerie", "Sylvia", "June", "Audrey", "Shirley", "Ann", "Marjorie",
    "Winifred", "Ivy", "Phyllis", "Beryl", "Rita", "Mavis", "Peggy", "Lilian", "Evelyn", "Josephine",
    "Rosemary", "Gwendoline", "Janet", "Elizabeth", "Susan", "Eleanor",
];

const OLDER_MALE: &[&str] = &[
    "John", "William", "George", "Kenneth", "Ronald", "Peter", "Derek", "Roy", "Brian", "Dennis", "Alan",
    "Raymond", "Arthur", "Frederick", "Albert", "Harold", "Stanley", "Leslie", "Norman", "Donald", "Colin",
    "Keith", "Terence", "Michael", "David", "Robert", "Anthony", "Barry", "Trevor", "Graham", "Eric",
    "Walter", "Leonard", "Cyril", "Reginald", "Gordon", "Bernard", "Thomas", "James", "Geoffrey",
    "Maurice", "Clifford", "Douglas", "Frank",
];

const YOUNGER_FEMALE: &[&str] = &[
    "Sarah", "Emma", "Claire", "Nicola", "Lisa", "Karen", "Julie", "Rachel", "Laura", "Gemma", "Amy",
    "Jessica", "Hannah", "Sophie", "Chloe", "Lauren", "Rebecca", "Michelle", "Samantha", "Kelly", "Jade",
    "Donna", "Tracey", "Joanne", "Stacey", "Natalie", "Kirsty", "Leanne", "Charlotte", "Danielle",
    "Zoe", "Helen", "Victoria", "Katie",
];

const YOUNGER_MALE: &[&str] = &[
    "James", "Daniel", "Paul", "Mark", "Andrew", "Stephen", "Richard", "Christopher", "Matthew", "Lee",
    "Craig", "Darren", "Jason", "Ryan", "Liam", "Thomas", "Joshua", "Jack", "Luke", "Adam", "Dean",
    "Wayne", "Gary", "Scott", "Carl", "Jamie", "Kieran", "Callum", "Nathan", "Ben", "Sean", "Martin",
];

const EE_FEMALE: &[&str] = &[
    "Agnieszka", "Katarzyna", "Magdalena", "Anna", "Joanna", "Ewa", "Krystyna", "Małgorzata", "Elena",
    "Ioana", "Jurgita", "Irena", "Zofia",
];

const EE_MALE: &[&str] = &[
    "Piotr", "Tomasz", "Krzysztof", "Marek", "Andrzej", "Paweł", "Jan", "Mihai", "Andrei", "Tadeusz",
    "Jonas", "Stanisław", "Zbigniew",
];

const SA_FEMALE: &[&str] = &[
    "Aisha", "Fatima", "Amina", "Nasreen", "Shazia", "Parveen", "Rukhsana", "Priya", "Anjali", "Sunita",
    "Kamaljit", "Gurpreet", "Harpreet", "Jasbir", "Shabana", "Salma", "Noor", "Razia", "Kulwant",
    "Bibi", "Hamida", "Shirin",
];

const SA_MALE: &[&str] = &[
    "Mohammed", "Muhammad", "Imran", "Tariq", "Asif", "Khalid", "Rashid", "Abdul", "Arjun", "Ravi",
    "Sanjay", "Rajesh", "Amrik", "Gurdeep", "Sukhdev", "Harjit", "Hassan", "Yusuf", "Mushtaq", "Bashir",
    "Ghulam", "Nazir",
];

const AF_FEMALE: &[&str] = &[
    "Abena", "Adwoa", "Ama", "Chiamaka", "Ngozi", "Folake", "Funmilayo", "Amara", "Blessing", "Grace",
    "Comfort", "Precious", "Fatoumata", "Hodan", "Sahra", "Faduma", "Halima",
];

const AF_MALE: &[&str] = &[
    "Kwame", "Kofi", "Chinedu", "Emeka", "Oluwaseun", "Tunde", "Adebayo", "Samuel", "Emmanuel", "Abdi",
    "Mohamed", "Yusuf", "Abdirahman", "Joseph", "Isaac",
];

const CA_FEMALE: &[&str] = &[
    "Hyacinth", "Beverley", "Marcia", "Paulette", "Sonia", "Claudette", "Yvonne", "Pearl", "Gloria",
    "Myrtle", "Cynthia", "Merline", "Enid",
];

const CA_MALE: &[&str] = &[
    "Winston", "Lloyd", "Delroy", "Errol", "Clinton", "Desmond", "Everton", "Carlton", "Neville",
    "Linford", "Aston", "Roy", "Vincent",
];

const CN_FEMALE: &[&str] = &["Mei", "Li", "Xiu Ying", "Ying", "Hui", "Lan", "Siu Wai", "Mei Ling", "Yan"];

const CN_MALE: &[&str] = &["Wei", "Jian", "Ming", "Hao", "Jun", "Kwok Wah", "Chi Keung", "Tak", "Bo"];

const BRITISH_FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
    "Harris", "Lewis", "Hughes", "Turner", "Hill", "Cooper", "Ward", "Morris", "Moore", "Clark", "Lee",
    "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis",
    "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter",
    "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Miller", "Cox", "Richards", "Marshall",
    "Anderson", "Simpson", "Ellis", "Adams", "Wilkinson", "Foster", "Chapman", "Powell", "Webb",
    "Rogers", "Gray", "Mason", "Hunt", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills",
    "Barnes", "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins",
    "Murray", "Dixon", "Harvey", "Pearson", "Graham", "Atkinson", "Lawrence", "Hodgson", "Heath",
    "Pickering", "Bradshaw", "Ashworth", "Spencer", "Fletcher", "Smith-Jones", "Ashby-Clarke",
];

const IRISH_FAMILY: &[&str] = &[
    "Murphy", "O'Brien", "Kelly", "O'Connor", "Byrne", "Ryan", "Walsh", "Doyle", "McCarthy",
    "Gallagher", "O'Neill", "Quinn", "Donnelly", "McLaughlin", "Brennan", "Fitzgerald",
];

const EE_FAMILY: &[&str] = &[
    "Nowak", "Wójcik", "Kowalczyk", "Mazur", "Krawczyk", "Dudek", "Zając", "Król", "Wróbel", "Pawlak",
    "Popescu", "Ionescu", "Horváth", "Novák", "Kaminski",
];

const SA_FAMILY: &[&str] = &[
    "Patel", "Khan", "Ahmed", "Ali", "Hussain", "Begum", "Singh", "Kaur", "Shah", "Sharma", "Akhtar",
    "Iqbal", "Mahmood", "Rahman", "Uddin", "Islam", "Chowdhury", "Gill", "Sandhu", "Mistry", "Parmar",
    "Bibi", "Choudhury",
];

const AF_FAMILY: &[&str] = &[
    "Okafor", "Mensah", "Adeyemi", "Owusu", "Boateng", "Osei", "Okoye", "Adebayo", "Nwosu", "Asante",
    "Abdi", "Mohamed", "Hassan", "Ahmed", "Diallo", "Kamara", "Farah", "Warsame",
];

const CA_FAMILY: &[&str] = &[
    "Campbell", "Brown", "Williams", "Thompson", "Clarke", "Francis", "Grant", "Henry", "Morgan", "Reid",
    "Stewart", "Gordon", "Bailey", "Lewis", "Edwards", "Samuels", "McKenzie", "Facey",
];

const CN_FAMILY: &[&str] = &["Chen", "Wang", "Li", "Zhang", "Liu", "Wong", "Chan", "Lam", "Cheung", "Ho", "Ng"];

pub(crate) const STREETS: &[&str] = &[
    "Church", "Station", "Victoria", "Park", "Queens", "Kings", "Mill", "Manor", "Albert", "Alexandra",
    "New", "School", "Green", "Grange", "Chapel", "Springfield", "Windsor", "York", "Meadow", "Orchard",
    "Beech", "Oak", "Elm", "Cedar", "Willow", "Hawthorn", "Rosebery", "Westfield", "Highfield",
    "Richmond", "Stanley", "Nelson", "Cromwell", "Clarence", "Brook", "Railway", "Balmoral", "Chestnut",
    "Hollybush", "Coronation", "Jubilee", "Derwent", "Thornton", "Ashgrove", "Fairfield", "Lime",
];

pub(crate) const STREET_SUFFIXES: &[&str] = &[
    "Road", "Street", "Lane", "Avenue", "Close", "Drive", "Crescent", "Way", "Gardens", "Terrace",
    "Grove", "Place", "Court", "Walk",
];

pub(crate) const BLOCKS: &[&str] = &[
    "Holly Court", "Jubilee House", "Beech Tower", "Windsor Court", "Kingsway House", "Priory Court",
    "Millbank House", "Garden Court",
];

/// Words care providers and homes are named with.
pub(crate) const CARE_WORDS: &[&str] = &[
    "Abbey", "Acorn", "Beech", "Bluebell", "Brook", "Cedar", "Elm", "Fern", "Hazel", "Heather", "Holly",
    "Ivy", "Laurel", "Maple", "Meadow", "Oak", "Orchard", "Primrose", "Rose", "Willow", "Sunrise",
    "Harbour", "Riverside", "Greenacres", "Kingsley", "Avery", "Bramble", "Copper Beech", "Foxglove",
    "Hillcrest", "Lavender", "Magnolia", "Oakwood", "Parkside", "Rowan", "Silverbirch", "Woodlands",
    "Lindens", "St Anne's", "St Michael's", "Ashdown", "Fairhaven", "Larchwood", "Thornbury",
];

pub(crate) const PROVIDER_SUFFIXES: &[&str] = &[
    "Care Ltd", "Healthcare Ltd", "Homecare Services Ltd", "Care Group", "Living Ltd",
    "Support Services CIC", "Nursing Homes Ltd", "Care Partnership LLP", "Community Care Ltd",
];
