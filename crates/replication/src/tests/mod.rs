mod leader;
mod random;
mod truncation;
