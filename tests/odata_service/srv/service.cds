using eol from '../db/schema';
service EolService @(path: '/odata/v4/eol') {
  entity Journals as projection on eol.Journals;
  entity Tasks as projection on eol.Tasks;
  entity Notes as projection on eol.Notes;
}
