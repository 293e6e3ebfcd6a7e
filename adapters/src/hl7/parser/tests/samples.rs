//! Realistic sample messages (CR-terminated, as sent over MLLP).

/// ADT^A01 2.5.1 with repetitions, escapes, a Z-segment and enhanced-mode MSH-15/16.
pub const ADT_A01: &[u8] = b"MSH|^~\\&|EPIC|UCH|MEDBUS|UCH|20240315083000||ADT^A01^ADT_A01|MSG00001|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
EVN|A01|20240315083000|||JSMITH^SMITH^JOHN\r\
PID|1||100001^^^UCH&1.2.3.4&ISO^MR~999-88-7777^^^SSA^SS||O'BRIEN^MARY^ANNE^^MS||19800101|F|||12 MAIN ST^APT 4B^SPRINGFIELD^IL^62701^USA||(217)555-0101^PRN^PH~^NET^Internet^mary@example.com|||M||ACCT0001\r\
NK1|1|O'BRIEN^PAT|SPO^Spouse|||(217)555-0102\r\
PV1|1|I|4W^401^A^UCH||||1234^WELBY^MARCUS^^^DR|||MED||||ADM|||1234^WELBY^MARCUS^^^DR|IN||||||||||||||||||||||||||20240315083000\r\
AL1|1|DA|PCN^Penicillin^L|SV|Hives\r\
DG1|1||I10^Essential hypertension^I10||20240315|A\r\
ZPI|1|VIP^Very important|pipe \\F\\ caret \\S\\ amp \\T\\ tilde \\R\\ backslash \\E\\ end\r";

/// ORU^R01 2.4 with four OBX, one multi-line text result.
pub const ORU_R01: &[u8] = b"MSH|^~\\&|LAB|UCH|MEDBUS|UCH|20240315101500||ORU^R01^ORU_R01|LAB0042|P|2.4\r\
PID|1||100001^^^UCH^MR||O'BRIEN^MARY\r\
ORC|RE|ORD1234|FIL5678\r\
OBR|1|ORD1234|FIL5678|24331-1^Lipid panel^LN|||20240315090000\r\
OBX|1|NM|2093-3^Cholesterol^LN||195|mg/dL|<200|N|||F\r\
OBX|2|NM|2571-8^Triglyceride^LN||210|mg/dL|<150|H|||F\r\
OBX|3|NM|2085-9^HDL^LN||45|mg/dL|>40|N|||F\r\
OBX|4|TX|NOTE^Comment^L||Fasting sample.\\.br\\Repeat in 3 months.||||||F\r\
NTE|1|L|Reviewed\r";

/// A 2.3 order with the nonstandard delimiter set `#$*@!`: field `#`,
/// component `$`, repetition `*`, escape `@`, sub-component `!`.
/// `|`, `^`, `~`, `\` and `&` are plain data here.
pub const NONSTANDARD: &[u8] = b"MSH#$*@!#ORDERS#H1#MEDBUS#H1#20240101120000##ORM$O01#X1#P#2.3\r\
PID#1##A1$$$H1*B2$$$H2##DOE$JANE!X$Q\r\
ORC#NW#O1\r\
OBX#1#ST#C$Code##a@F@b@S@c@R@d@T@e@E@f#x|y^z~w\\v&u\r";

/// Replaces the CR terminators of a sample by `terminator`.
pub fn with_terminator(msg: &[u8], terminator: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for seg in msg.split(|&b| b == b'\r').filter(|s| !s.is_empty()) {
        out.extend_from_slice(seg);
        out.extend_from_slice(terminator);
    }
    out
}
