namespace eol;
entity Journals {
  key ID : Integer;
  amount : Decimal(10,2);
  entered : Date;
  description : String(100);
}
entity Tasks {
  key ID : UUID;
  description : String(100);
}
entity Notes {
  key name : String(200);
  body : String(100);
}
